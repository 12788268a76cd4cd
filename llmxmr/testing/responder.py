"""A scripted, compliant stand-in for an LLM: reads `Task: <stage>` and the prompt's ids, and answers
valid JSON (or prose) for that stage, deterministically from the prompt's hash.

One responder serves the fake chat model of the tests, the notebooks' stub model and the benchmark's HTTP
mock, so every measured or tested path parses the same answers production parses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

TASK_RE = re.compile(r"^Task: (\w+)", re.M)
SECTION_RE = re.compile(r"\[(s\d+)\]")
DOC_RE = re.compile(r'<document id="([^"]+)" title="([^"]*)"')
CITE_RE = re.compile(r"\[@([a-z0-9][a-z0-9-]*)\]")
AGAIN_RE = re.compile(r"This reading asks only for ([^:]*):")  # a later digest pass names its sections
NUMBERED_RE = re.compile(r"^(\d+)\. ", re.M)
FLAGGED_RE = re.compile(r"^(\d+)\. .*\n   check:", re.M)  # a claim to fix in a repair prompt
CLAIM_RE = re.compile(r"^Claim (\d+): ", re.M)  # a claim to check in a verify prompt


def digest_asks(user: str) -> tuple[list[str], list[str] | None]:
    """(every section id of a digest prompt's outline, the ids a later reading asks for again or None)."""
    ids = list(dict.fromkeys(SECTION_RE.findall(user.split("<document", 1)[0].split("This reading asks", 1)[0])))
    again = AGAIN_RE.search(user)
    return ids, (SECTION_RE.findall(again.group(1)) if again else None)


def _text(message: Any) -> str:
    if isinstance(message, dict):
        content = message.get("content", "")
    else:
        content = getattr(message, "content", "")
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content)


def stage_of(messages: Sequence[Any]) -> str:
    for m in messages:
        match = TASK_RE.search(_text(m))
        if match:
            return match.group(1)
    return "unknown"


_ANSWER_LINE = re.compile(r"\n(Answer with one JSON object only[^\n]*)")
_CITE_LAST = re.compile(r"\nCite this paper as \[@[^\]\n]+\]\.$")


_RATED_SECTION = re.compile(r"^( *)\[(s\d+)\] ")


def _judged_in_full(system: str, user: str) -> tuple[str, str]:
    """A default-mode judge request read as the outline to rate shown in full under "Outline:" (how every
    judge request read before the block's start outline came first): a scripted judge rates the outline, not
    its presentation, so the same candidate gets the same answer either way and a run keeps its course."""
    from llmxmr.prompts.judge import BASE_HEAD, RATE_HEAD, RATE_REVISION_HEAD, REVISION

    if f"\n{REVISION}" not in system:
        return system, user
    system = system.replace(f"\n{REVISION}", "")
    if user.startswith(f"{RATE_HEAD}\n"):
        return system, "Outline:\n" + user[len(RATE_HEAD) + 1:]
    base, sep, rated = user.removeprefix(f"{BASE_HEAD}\n").partition(f"\n\n{RATE_REVISION_HEAD}\n")
    if not sep:  # not a revision (a test's own message): as it is
        return system, user
    described: dict[str, list[str]] = {}  # section id -> its description lines in the base, unindented
    current = None
    for line in base.split("\n"):
        m = _RATED_SECTION.match(line)
        if m:
            current = m.group(2)
        elif current and line.strip().startswith(("construction: ", "analysis: ")):
            described.setdefault(current, []).append(line.strip())
    lines = rated.split("\n")
    full: list[str] = []
    for i, line in enumerate(lines):
        full.append(line)
        m = _RATED_SECTION.match(line)
        shown = i + 1 < len(lines) and lines[i + 1].strip().startswith(("construction: ", "analysis: "))
        if m and not shown:
            full += [f"{m.group(1)}  {d}" for d in described.get(m.group(2), [])]
    return system, "Outline:\n" + "\n".join(full)


def as_read(system: str, user: str) -> tuple[str, str]:
    """The request as the scripted models read it: the answer-format line at the user message's end, wherever
    the prompt puts it (the system message, since the prompts were laid out for prefix caching), so that
    moving fixed text between the messages leaves a scripted run's answers, and so its course, as they were;
    a default-mode judge request with the outline in full (`_judged_in_full`)."""
    if system.startswith("Task: judge\n"):
        system, user = _judged_in_full(system, user)
    m = _ANSWER_LINE.search(system)
    if m is None:
        return system, user
    gap = "\n" if _CITE_LAST.search(user) else "\n\n"  # the digest's line followed its cite line directly
    return system[:m.start()] + system[m.end():], user + gap + m.group(1)


def seed_text(system: str, user: str) -> str:
    """What an answer's seed hashes (`as_read`)."""
    return "".join(as_read(system, user))


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16)


def _words(seed: int, n: int) -> str:
    vocab = ["latency", "throughput", "scheduling", "isolation", "fairness", "overhead", "queues", "locks",
             "processes", "threads", "events", "signals", "pipes", "futures", "coroutines", "selectors"]
    return " ".join(vocab[(seed >> (i % 40)) % len(vocab)] for i in range(n))


class Responder:
    """`respond(messages) -> str`; `sections_per_outline` and `subsections` shape the outlines it drafts."""

    def __init__(self, *, sections_per_outline: int = 4, subsections: int = 2, words: int = 30,
                 shape: tuple[int, ...] | None = None, title_words: int = 2,
                 desc_words: tuple[int, int] = (4, 3), why: str = "explain why they differ") -> None:
        self.sections = sections_per_outline
        self.subsections = subsections
        self.words = words
        # An outline draft: subsections per top-level section, words per title and per description.
        self.shape = tuple(shape) if shape is not None else (subsections,) * sections_per_outline
        self.title_words = title_words
        self.desc_words = desc_words
        self.why = why

    def respond(self, messages: Sequence[Any]) -> str:
        stage = stage_of(messages)
        system = _text(messages[0]) if messages else ""
        user = "\n".join(_text(m) for m in messages[1:])
        system, user = as_read(system, user)
        seed = _h(system + user)
        handler = getattr(self, f"_{stage}", None)
        if handler is None:
            return self._any_stage(stage, seed)
        return handler(system, user, seed)

    def _any_stage(self, stage: str, seed: int) -> str:
        """A stage with no scripted handler (a new one): a minimal valid answer for its schema in the stage
        table, or a sentence of prose for a prose stage."""
        from llmxmr.stages import stages_named

        rows = stages_named(stage)
        if not rows:
            return json.dumps({"suggestion": "n/a"})
        if rows[0].schema is None:
            return f"A scripted answer about {_words(seed, 5)}."
        return json.dumps(minimal_instance(rows[0].schema.model_json_schema()))

    # -- stages ---------------------------------------------------------------------------------------
    def _map(self, system: str, user: str, seed: int) -> str:
        docs = DOC_RE.findall(user)
        title = docs[0][1] if docs else "the document"
        return json.dumps({"notes": [f"{title}: finding {i + 1} on {_words(seed + i, 6)}." for i in range(3)]})

    _reduce_notes = _map

    def _group(self, system: str, user: str, seed: int) -> str:
        numbers = [int(n) for n in NUMBERED_RE.findall(user)]
        half = (len(numbers) + 1) // 2
        topics = [{"name": "Topic A", "papers": numbers[:half]}, {"name": "Topic B", "papers": numbers[half:]}]
        return json.dumps({"topics": [t for t in topics if t["papers"]]})

    def _descriptions(self, seed: int, i: int, j: int, cite: str) -> tuple[str, str]:
        """Section (i, j)'s construction and analysis (the benchmark mock writes calibrated ones)."""
        cw, aw = self.desc_words
        return (f"Extract {_words(seed + i + j, cw)} from each paper{cite}.",
                f"Compare {_words(seed + 3 * i + j, aw)} across papers{cite}; {self.why}.")

    def _outline(self, user: str, seed: int) -> dict:
        cites = [d[0] for d in DOC_RE.findall(user)] or CITE_RE.findall(user)
        cite = f" [@{cites[0]}]" if cites else ""

        def leaf(i: int, j: int) -> dict:
            construction, analysis = self._descriptions(seed, i, j, cite)
            return {"title": f"Aspect {i + 1}.{j + 1}: {_words(seed + 7 * i + j, self.title_words)}",
                    "construction": construction, "analysis": analysis}

        sections = []
        for i, subs in enumerate(self.shape):
            s = leaf(i, 99)
            s["title"] = f"Theme {i + 1}: {_words(seed + i, self.title_words)}"
            s["subsections"] = [dict(leaf(i, j), subsections=[]) for j in range(subs)]
            sections.append(s)
        return {"title": "Survey", "sections": sections}

    def _skeleton(self, system: str, user: str, seed: int) -> str:
        return json.dumps(self._outline(user, seed))

    _merge_skeleton = _skeleton

    def _digest(self, system: str, user: str, seed: int) -> str:
        docs = DOC_RE.findall(user)
        pid = docs[0][0] if docs else "unknown"
        ids, again = digest_asks(user)
        chosen = [ids[(seed + k) % len(ids)] for k in range(min(2, len(ids)))] if ids else []
        if again is not None:  # a later reading: each section it asks for is relevant as often as in a full one
            chosen = [sid for sid in again if _h(f"{seed}:{sid}") % max(1, len(ids)) < 2]
        sections = [{"section_id": sid, "content": f"The paper reports {_words(seed + n, 8)} [@{pid}]."}
                    for n, sid in enumerate(dict.fromkeys(chosen))]
        return json.dumps({"sections": sections, "suggestion": f"Cover {_words(seed, 3)} in its own section [@{pid}]."})

    def _suggestion(self, user: str, seed: int) -> str:
        cites = CITE_RE.findall(user)
        cite = f" [@{cites[seed % len(cites)]}]" if cites else ""
        return json.dumps({"suggestion": f"Restructure around {_words(seed, 4)}{cite}."})

    def _feedback(self, system: str, user: str, seed: int) -> str:
        return self._suggestion(user, seed)

    def _merge_suggestions(self, system: str, user: str, seed: int) -> str:
        return self._suggestion(user, seed)

    def _critique(self, system: str, user: str, seed: int) -> str:
        return self._suggestion(user, seed)

    def _modify(self, system: str, user: str, seed: int) -> str:
        if '"edits"' not in system + user:  # reference mode: the whole outline
            return json.dumps(self._outline(user, seed))
        ids = list(dict.fromkeys(SECTION_RE.findall(user)))
        if not ids:
            return json.dumps({"edits": []})
        target = ids[seed % len(ids)]
        return json.dumps({"edits": [
            {"op": "retitle", "section_id": target, "title": f"Revised: {_words(seed, 3)}"},
            {"op": "describe", "section_id": ids[(seed // 7) % len(ids)], "analysis": f"Contrast {_words(seed + 1, 5)}."},
        ]})

    def _judge(self, system: str, user: str, seed: int) -> str:
        if "single digit" in system:
            return json.dumps({"rationale": f"Structure is {_words(seed, 3)}.", "score": 3 + seed % 6})
        return json.dumps({"rationale": f"Structure is {_words(seed, 3)}.", "score": round(3 + (seed % 60) / 10, 1)})

    _eval_judge = _judge  # the evaluator's criteria ask for the same single digit

    def _eval_claims(self, system: str, user: str, seed: int) -> str:
        """The section's sentences as its claims (so a repeated sentence is a repeated claim)."""
        body = user.split("Section:", 1)[-1].split("\n\n", 1)[-1].rsplit("\n\nAnswer with", 1)[0]
        claims = [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if len(s.split()) >= 4][:40]
        return json.dumps({"claims": [c[:200] for c in claims]})

    def _write_section(self, system: str, user: str, seed: int) -> str:
        cites = list(dict.fromkeys(CITE_RE.findall(user)))
        sentences = [f"Work on {_words(seed + i, 5)} shows clear trade-offs [@{pid}]." for i, pid in enumerate(cites[:4])]
        return " ".join(sentences) or f"This section connects {_words(seed, self.words // 5)}."

    def _polish(self, system: str, user: str, seed: int) -> str:
        return user.strip()

    def _verify(self, system: str, user: str, seed: int) -> str:
        """A compliant verifier that finds every citation supported by its first passage."""
        claims = [int(n) for n in CLAIM_RE.findall(user)]
        return json.dumps({"verdicts": [{"claim": n, "passage": 1, "reason": "Passage 1 states it.", "verdict": 2}
                                        for n in claims]})

    def _repair(self, system: str, user: str, seed: int) -> str:
        """Drops every flagged claim and places each uncited paper with one sentence in its section."""
        fixes, additions = [], []
        for part in user.split("\n---\n"):
            head = part.split("\nEvidence of", 1)[0]
            sid = (SECTION_RE.findall(head) or ["s1"])[0]
            fixes += [{"claim": int(n), "text": ""} for n in FLAGGED_RE.findall(head)]
            if "not cited yet:" in head:
                for pid in CITE_RE.findall(head.split("not cited yet:", 1)[1].split("\n", 1)[0]):
                    additions.append({"section_id": sid, "text": f"Its evidence bears on {_words(seed, 4)} [@{pid}]."})
        return json.dumps({"fixes": fixes, "additions": additions})

    def _charts(self, system: str, user: str, seed: int) -> str:
        ids = SECTION_RE.findall(user)
        charts = [{"section_id": ids[0], "caption": "Overview", "mermaid": "graph TD; A[Input] --> B[Output]"}] if ids else []
        return json.dumps({"charts": charts})


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The smallest JSON value a JSON Schema (as pydantic writes it) accepts: required fields only."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return minimal_instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return minimal_instance(schema[key][0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: minimal_instance(props[name], defs) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "scripted"
