"""A loopback OpenAI-compatible mock LLM for benchmarks.

It reuses the project's `StubOpenAIServer` (stdlib HTTP, `disable_nagle_algorithm = True`) and the scripted
`Responder` (valid answers for every stage, keyed by the prompt's `Task: <stage>` line, deterministic by the
prompt's hash), and adds what a benchmark needs:

* a latency model: every call sleeps `base + per_token * completion_tokens` seconds inside the handler;
* a cap on concurrent requests (a semaphore: requests beyond the cap wait, as on a rate-limited API);
* realistic `usage` (tiktoken counts of the messages and of the answer) and answers of realistic length per
  stage (`BenchResponder`, with a `length` knob that scales every answer);
* a prefix cache modelled on OpenAI's (`bench/prefix_cache.py`): each answer's usage reports the prompt
  tokens it would serve from cache (`prompt_tokens_details.cached_tokens`), as OpenAI does;
* a request log: arrival, start (after the cap), end, stage, requests in flight and queued, tokens
  (o200k: prompt, cached, completion; and the characters of prompt and answer, for the characters ÷ 4
  unit), the request's `max_tokens` and whether the answer overshot it.

Run it as its own process (so its CPU is not charged to the pipeline under test):

    python bench/mock.py --latency 1.0 --per-token 0.005 --max-inflight 20 --log /tmp/requests.jsonl

It prints one line `{"base_url": ...}` on stdout when it is listening and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/mock.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.prefix_cache import PrefixCache, prompt_token_ids
from llmxmr.models.tokens import (
    SLICE_CHARS,
    _encoder,
    count_tokens,
    ensure_tiktoken_offline,
    truncate_to_tokens,
)
from llmxmr.testing.openai_stub import StubOpenAIServer
from llmxmr.testing.responder import (
    CITE_RE,
    DOC_RE,
    SECTION_RE,
    Responder,
    _words,
    digest_asks,
    stage_of,
)
from llmxmr.testing.scripted_server import scripted_reply

# S = 38 non-root sections: 8 top-level sections with 4,4,4,4,4,4,3,3 subsections (the reference's example).
DEFAULT_SHAPE = (4, 4, 4, 4, 4, 4, 3, 3)


# Common words of technical English: ~4.5 characters per o200k token, as real answers have (the scripted
# Responder's vocabulary of long words has ~9, which made answers short in tokens for their characters).
PROSE = ("the", "of", "and", "a", "to", "in", "is", "that", "for", "on", "with", "as", "by", "this", "are",
         "we", "from", "at", "which", "an", "be", "it", "or", "model", "data", "results", "method", "training",
         "performance", "show", "using", "based", "approach", "each", "than", "more", "cache", "latency",
         "memory", "tokens", "layer", "attention", "time", "cost", "two", "three", "large", "small", "higher",
         "lower", "our", "their", "these", "models", "also", "between", "across", "when", "while", "batch",
         "request", "server", "queue", "throughput", "accuracy", "error", "rate", "speed", "size", "input",
         "output", "first", "second", "paper", "work", "study", "compare", "both", "only", "most", "such",
         "can", "may", "not", "but", "per", "over", "under", "into", "how", "why", "what", "new")

# Answer lengths per stage in o200k tokens, calibrated to the reference implementation's measured answers
# (issue 14) where our prompt asks for the same thing, else at the bound our schema or prompt sets:
CALIBRATED = {
    "note": 60,  # map: at most 8 notes of at most 300 characters (no reference stage)
    "digest_section": 130, "digest_suggestion": 150,  # 3 relevant sections, not the reference's whole tree
    "suggestion": 250,  # feedback / merge / critique: 650-840 in the reference; ours bound at 1,200 characters
    "rationale": 220,  # judge: the reference's ~240 (ours bound at 1,000 characters)
    "description": 39,  # per construction / analysis: a whole S = 38 outline ~4,600 tokens, as the reference's
    "section": 525,  # the reference's ~525 per section
    "chart": 58,  # 6 charts: the reference's ~350 in all
}


def prose(seed: int, tokens: int, max_chars: int | None = None) -> str:
    """Deterministic sentences of common words, `tokens` o200k tokens long (cut at `max_chars` if given)."""
    import random

    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < tokens:
        words = [rng.choice(PROSE) for _ in range(rng.randint(10, 20))]
        sentence = " ".join(words).capitalize() + "."
        parts.append(sentence)
        total += count_tokens(sentence) + 1
    text = truncate_to_tokens(" ".join(parts), tokens)[0].rstrip()
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return text


class BenchResponder(Responder):
    """The scripted Responder with answers of realistic length per stage.

    `calibrated` (the default): prose of common words, lengths per stage from CALIBRATED; False: the earlier
    lengths (long-word vocabulary: notes ~350 tokens, digests ~470, suggestions ~150, judge ~100, sections
    ~580, whole outlines ~6,400). `length` scales every answer; `shape` is the number of subsections of each
    top-level section of every outline it drafts; `desc_words` the words of each description (uncalibrated).
    """

    def __init__(self, *, length: float = 1.0, shape: tuple[int, ...] = DEFAULT_SHAPE, desc_words: int = 48,
                 calibrated: bool = True) -> None:
        self.length = length
        self.calibrated = calibrated
        dw = self.n(desc_words)
        super().__init__(words=30, shape=shape, title_words=3, desc_words=(dw, dw), why="explain why")

    def n(self, words: int) -> int:
        return max(1, int(round(words * self.length)))

    def t(self, kind: str) -> int:
        """Calibrated tokens of one piece of answer."""
        return self.n(CALIBRATED[kind])

    @property
    def sections_total(self) -> int:
        return len(self.shape) + sum(self.shape)

    def _descriptions(self, seed: int, i: int, j: int, cite: str) -> tuple[str, str]:
        if not self.calibrated:
            return super()._descriptions(seed, i, j, cite)
        d = self.t("description")
        return f"Extract {prose(seed + i + j, d, 440)}{cite}.", f"Compare {prose(seed + 3 * i + j, d, 440)}{cite}."

    # -- reading ---------------------------------------------------------------------------------------
    def _map(self, system: str, user: str, seed: int) -> str:
        docs = DOC_RE.findall(user)
        title = docs[0][1][:60] if docs else "the document"
        if self.calibrated:
            return json.dumps({"notes": [f"{title}: {prose(seed + i, self.t('note'), 290 - len(title))}."
                                         for i in range(8)]})
        w = min(self.n(30), 40)  # a note is at most 300 characters
        return json.dumps({"notes": [f"{title}: finding {i + 1}: {_words(seed + i, w)}."[:300] for i in range(8)]})

    _reduce_notes = _map

    def _digest(self, system: str, user: str, seed: int) -> str:
        docs = DOC_RE.findall(user)
        pid = docs[0][0] if docs else "unknown"
        ids, again = digest_asks(user)
        chosen = list(dict.fromkeys(ids[(seed + 5 * k) % len(ids)] for k in range(3))) if ids else []
        if again is not None:  # a later reading: each section it asks for is relevant as often as any in a
            # full reading (3 of the outline's S), so the answer is as long per relevant section
            chosen = [sid for sid in again
                      if int(hashlib.sha256(f"{seed}:{sid}".encode()).hexdigest()[:8], 16) % len(ids) < 3]
        if self.calibrated:
            sections = [{"section_id": sid, "content": f"{prose(seed + n, self.t('digest_section'), 960)} [@{pid}]."}
                        for n, sid in enumerate(chosen)]
            return json.dumps({"sections": sections, "suggestion":
                               f"Cover {prose(seed, self.t('digest_suggestion'), 1100)} in its own section [@{pid}]."})
        w = min(self.n(90), 110)  # content is at most 1000 characters
        sections = [{"section_id": sid, "content": f"The paper reports {_words(seed + n, w)} [@{pid}]."[:990]}
                    for n, sid in enumerate(chosen)]
        return json.dumps({"sections": sections,
                           "suggestion": f"Cover {_words(seed, min(self.n(60), 120))} in its own section [@{pid}]."[:1150]})

    # -- planning --------------------------------------------------------------------------------------
    def _suggestion(self, user: str, seed: int) -> str:
        cites = CITE_RE.findall(user)
        cite = f" [@{cites[seed % len(cites)]}]" if cites else ""
        # As the prompts ask: the suggestion names the sections it changes by id (two of the outline's).
        ids = list(dict.fromkeys(SECTION_RE.findall(user.split("\n\n", 1)[0])))
        where = f" in [{ids[seed % len(ids)]}] and [{ids[(seed // 5) % len(ids)]}]" if ids else ""
        if self.calibrated:
            return json.dumps({"suggestion": f"Restructure{where} around {prose(seed, self.t('suggestion'), 1080)}{cite}."})
        return json.dumps({"suggestion": f"Restructure{where} around {_words(seed, min(self.n(110), 120))}{cite}."[:1150]})

    def _modify(self, system: str, user: str, seed: int) -> str:
        if '"edits"' not in system + user:  # reference mode: the whole outline
            return json.dumps(self._outline(user, seed))
        outline, _, suggestion = user.partition("Suggestion:")
        ids = list(dict.fromkeys(SECTION_RE.findall(suggestion))) or list(dict.fromkeys(SECTION_RE.findall(outline)))
        if not ids:
            return json.dumps({"edits": []})
        if self.calibrated:
            d = self.t("description")
            texts = [prose(seed + k, d, 440) for k in range(1, 4)]
        else:
            dw = self.desc_words[0]  # already scaled by `length`
            texts = [_words(seed + k, dw) for k in range(1, 4)]
        edits = [
            {"op": "retitle", "section_id": ids[seed % len(ids)], "title": f"Revised: {_words(seed, 4)}"},
            {"op": "describe", "section_id": ids[(seed // 7) % len(ids)],
             "construction": f"Extract {texts[1]}.", "analysis": f"Contrast {texts[0]}."},
            {"op": "describe", "section_id": ids[(seed // 11) % len(ids)], "analysis": f"Explain {texts[2]}."},
        ]
        return json.dumps({"edits": edits})

    def _judge(self, system: str, user: str, seed: int) -> str:
        if self.calibrated:
            why = f"Structure: {prose(seed, self.t('rationale'), 980)}."
        else:
            why = f"Structure is {_words(seed, min(self.n(80), 110))}."[:990]
        if "single digit" in system:
            return json.dumps({"rationale": why, "score": 3 + seed % 6})
        return json.dumps({"rationale": why, "score": round(3 + (seed % 60) / 10, 1)})

    # -- writing ---------------------------------------------------------------------------------------
    def _write_section(self, system: str, user: str, seed: int) -> str:
        cites = list(dict.fromkeys(CITE_RE.findall(user)))
        if self.calibrated:  # sentences of ~30 tokens, each citing one of the section's papers
            out: list[str] = []
            total, i = 0, 0
            while total < self.t("section"):
                c = f" [@{cites[i % len(cites)]}]" if cites else ""
                sentence = f"{prose(seed + i, 24).rstrip('.')}{c}."
                out.append(sentence)
                total += count_tokens(sentence) + 1
                i += 1
            return " ".join(out)
        sentences = self.n(14)
        out = []
        for i in range(sentences):
            c = f" [@{cites[i % len(cites)]}]" if cites else ""
            out.append(f"Work on {_words(seed + i, 20)} shows clear trade-offs{c}.")
        return " ".join(out)

    def _charts(self, system: str, user: str, seed: int) -> str:
        if not self.calibrated:
            return super()._charts(system, user, seed)
        ids = list(dict.fromkeys(SECTION_RE.findall(user)))
        charts = [{"section_id": ids[(seed + k) % len(ids)], "caption": prose(seed + k, 10, 120),
                   "mermaid": "graph TD; " + "; ".join(f"N{k}{j}[{prose(seed + 10 * k + j, 4, 40)}] --> N{k}{j + 1}"
                                                       for j in range(max(1, (self.t("chart") - 14) // 16)))}
                  for k in range(6)] if ids else []
        return json.dumps({"charts": charts})

    # -- the citation check ---------------------------------------------------------------------------
    def _verify(self, system: str, user: str, seed: int) -> str:
        """A verdict after a one-sentence reason (~45 tokens each): 8 in 10 citations supported, 1 partly, 1 not."""
        out = []
        for n, claim in re.findall(r"^Claim (\d+): (.*)$", user, re.M):
            s = seed + 7 * int(n) + len(claim)
            out.append({"claim": int(n), "passage": 1, "reason": f"Passage 1 reports {_words(s, min(self.n(22), 30))}."[:190],
                        "verdict": (2, 2, 2, 2, 2, 2, 2, 2, 1, 0)[s % 10]})
        return json.dumps({"verdicts": out})

    def _repair(self, system: str, user: str, seed: int) -> str:
        """A rewritten sentence (~30 words) per flagged claim, re-citing its paper; one per uncited paper."""
        fixes, additions = [], []
        for part in user.split("\n---\n"):
            head = part.split("\nEvidence of", 1)[0]
            sid = (SECTION_RE.findall(head) or ["s1"])[0]
            for n, claim in re.findall(r"^(\d+)\. (.*)\n   check:", head, re.M):
                cites = CITE_RE.findall(claim)
                cite = f" [@{cites[0]}]" if cites else ""
                fixes.append({"claim": int(n), "text": f"Work on {_words(seed + int(n), self.n(24))} is reported{cite}."[:490]})
            if "not cited yet:" in head:
                for i, pid in enumerate(CITE_RE.findall(head.split("not cited yet:", 1)[1].split("\n", 1)[0])):
                    additions.append({"section_id": sid, "text": f"Its evidence bears on {_words(seed + i, self.n(24))} [@{pid}]."[:490]})
        return json.dumps({"fixes": fixes, "additions": additions})


def completion_limit(request: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        if request.get(key):
            return int(request[key])
    return None


class BenchMock:
    """The stub server plus latency model, concurrency cap and request log (in this process)."""

    def __init__(self, *, latency: float = 0.0, per_token: float = 0.0, max_inflight: int = 20,
                 responder: Responder | None = None, log_path: str | Path | None = None,
                 enforce_max_tokens: bool = False, prefix_cache: bool = True) -> None:
        ensure_tiktoken_offline()
        self._encoder = _encoder()  # loaded before serving, not inside the first request (~1 s of CPU)
        self.latency = latency
        self.per_token = per_token
        self.max_inflight = max_inflight
        self.responder = responder or BenchResponder()
        self.enforce_max_tokens = enforce_max_tokens
        self._cap = threading.BoundedSemaphore(max_inflight)
        self._lock = threading.Lock()
        self._inflight = 0
        self._queued = 0
        self.log: list[dict[str, Any]] = []
        self._log_file = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
        self.t0 = time.time()
        # Off: no `cached_tokens` in usage, and no second tokenising of every prompt for the lookup (for a
        # 4.5 k-token prompt the answer's CPU went from 1.9 to 1.0 ms, HTTP aside: CPU the client shares).
        self.prefix_cache = PrefixCache() if prefix_cache else None
        self.server = StubOpenAIServer(self._answer, models=["mock", "scripted"])

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> BenchMock:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> BenchMock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    # -- one request ---------------------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        if self._encoder is None:  # no vocabulary: the 4-characters heuristic of count_tokens
            return [0] * count_tokens(text)
        return self._encoder.encode(text, disallowed_special=())

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        arrived = time.time()
        messages = request.get("messages") or []
        stage = stage_of(messages)
        cached = prompt = None
        if self.prefix_cache is not None:
            ids = prompt_token_ids(messages, self._encode)
            cached = self.prefix_cache.lookup_and_add(str(request.get("model")), ids, arrived - self.t0)
            # The same count the usage reports (4 markers + the content's tokens per message), from the one
            # encoding: texts counted slice by slice (count_tokens) or in content parts are counted there.
            if all(isinstance(m.get("content") or "", str) and len(m.get("content") or "") <= SLICE_CHARS
                   for m in messages):
                prompt = len(ids)
        prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
        with self._lock:
            self._queued += 1
        self._cap.acquire()
        try:
            started = time.time()
            with self._lock:
                self._queued -= 1
                self._inflight += 1
                inflight, queued = self._inflight, self._queued
            reply = scripted_reply(self.responder, request, prompt=prompt)
            reply["cached_tokens"] = cached
            limit = completion_limit(request)
            over = limit is not None and reply["completion_tokens"] > limit
            if over and self.enforce_max_tokens:  # what a real server does: cut the answer, finish "length"
                reply["content"] = truncate_to_tokens(reply["content"], limit)[0]
                reply["completion_tokens"] = limit
                reply["finish_reason"] = "length"
            delay = self.latency + self.per_token * reply["completion_tokens"]
            if delay > 0:
                time.sleep(delay)
            ended = time.time()
        finally:
            with self._lock:
                self._inflight -= 1
            self._cap.release()
        entry = {"arrived": arrived - self.t0, "started": started - self.t0, "ended": ended - self.t0,
                 "stage": stage, "inflight": inflight, "queued": queued,
                 "prompt_tokens": reply["prompt_tokens"], "completion_tokens": reply["completion_tokens"],
                 "cached_tokens": cached, "prompt_chars": prompt_chars, "completion_chars": len(reply["content"]),
                 "model": request.get("model"), "seed": request.get("seed"),
                 "body_sha": hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16],
                 "max_tokens": limit, "over_limit": over, "temperature": request.get("temperature"),
                 "logprobs": bool(request.get("logprobs"))}
        with self._lock:
            self.log.append(entry)
            if self._log_file is not None:
                self._log_file.write(json.dumps(entry) + "\n")
        return reply


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=float, default=0.0, help="base seconds per call")
    ap.add_argument("--per-token", type=float, default=0.0, help="seconds per completion token")
    ap.add_argument("--max-inflight", type=int, default=20, help="requests served at once; more wait")
    ap.add_argument("--length", type=float, default=1.0, help="scale of every answer's length")
    ap.add_argument("--uncalibrated", action="store_true",
                    help="the earlier answer lengths (before the calibration to the reference's answers)")
    ap.add_argument("--enforce-max-tokens", action="store_true",
                    help="cut answers longer than the request's max_tokens (finish_reason=length)")
    ap.add_argument("--shape", default=",".join(map(str, DEFAULT_SHAPE)),
                    help="subsections of each top-level section of every drafted outline (S = sections + their sum)")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--no-prefix-cache", action="store_true",
                    help="no prefix-cache accounting (no cached_tokens in usage): less CPU per request")
    args = ap.parse_args(argv)
    mock = BenchMock(latency=args.latency, per_token=args.per_token, max_inflight=args.max_inflight,
                     responder=BenchResponder(length=args.length, shape=tuple(int(x) for x in args.shape.split(",") if x),
                                              calibrated=not args.uncalibrated), log_path=args.log,
                     enforce_max_tokens=args.enforce_max_tokens, prefix_cache=not args.no_prefix_cache).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps({"base_url": mock.base_url}), flush=True)
    stop.wait()
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
