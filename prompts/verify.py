"""Citation check: does each cited source support its claim (verify, several claims per call), and the
repair of sections whose claims it does not support or which leave papers with evidence uncited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmxmr.prompts.common import document_block, json_only, messages

VERIFY_SYSTEM = """You check the citations of a survey. The claims are grouped under the paper they cite: each
paper's passages are shown once, followed by the numbered claims that cite it. For each claim, read the
passages of its paper and decide whether they state what the claim attributes to the paper:
2 = supported (the passages say it), 1 = partially supported (some of it, or less strongly),
0 = not supported (the passages do not say it, or say otherwise).
Judge only from the passages, not from what you know. For every claim give its number, the number of the
passage of its paper you relied on (0 when none), a short reason, then the verdict as a single digit."""


@dataclass(frozen=True)
class PaperClaims:
    """One cited paper in a verifier call: its distinct passages (numbered from 1 in the prompt) and the
    claims that cite it, as (claim number, claim)."""

    paper_id: str
    title: str
    passages: tuple[str, ...]
    claims: tuple[tuple[int, str], ...]


def by_paper(items: Sequence[tuple[str, str, str, Sequence[str]]]) -> list[PaperClaims]:
    """`items` (claim, cited paper id, paper title, passages) grouped by paper in order of first citation,
    claims numbered from 1 in item order. Claims citing one paper often retrieve the same passages: each is
    sent once (the verifier reads every passage of the paper for each of its claims), not once per claim."""
    order: dict[str, tuple[str, list[str], list[tuple[int, str]]]] = {}
    for n, (claim, paper_id, title, passages) in enumerate(items, 1):
        _, shown, claims = order.setdefault(paper_id, (title, [], []))
        shown.extend(p for p in passages if p not in shown)
        claims.append((n, claim))
    return [PaperClaims(pid, title, tuple(shown), tuple(claims)) for pid, (title, shown, claims) in order.items()]


def verify_claims(items: Sequence[tuple[str, str, str, Sequence[str]]], *, language: str = "en"):
    """`items`: (claim, cited paper id, paper title, passages), numbered from 1 in the prompt and shown
    grouped by paper (`by_paper`): a verdict's passage number counts within its claim's paper."""
    blocks = []
    for paper in by_paper(items):
        shown = "\n\n".join(f"Passage {i}:\n{p}" for i, p in enumerate(paper.passages, 1))
        claims = "\n".join(f"Claim {n}: {claim}" for n, claim in paper.claims)
        blocks.append(f"{document_block(paper.paper_id, paper.title, shown)}\n{claims}")
    return messages("verify", VERIFY_SYSTEM, "\n\n".join(blocks), language=language, answer=json_only(
        '{"verdicts": [{"claim": 1, "passage": 2, "reason": "Passage 2 reports the same 40% latency drop.", '
        '"verdict": 2}]}'))


REPAIR_SYSTEM = """You repair sections of a survey. Some numbered claims are not supported by the papers they
cite (the check's reason is given). For each, either re-cite it with the paper whose evidence does support it,
weaken it to what the source says, or drop it (empty text). Keep each claim one sentence, keep citation
markers exactly as given, e.g. [@paper-id], and cite only papers shown in that section's evidence.
Where papers are listed as not cited yet, add one sentence to that section for each, stating what its
evidence says and citing it."""


@dataclass(frozen=True)
class SectionToRepair:
    section_id: str
    title: str
    text: str
    flagged: Sequence[tuple[int, str, str]]  # (claim number, claim, why the check failed)
    uncited: Sequence[str]  # paper ids with evidence here that the article does not cite yet
    evidence: str


def repair_sections(sections: Sequence[SectionToRepair], *, language: str = "en"):
    parts = []
    for s in sections:
        part = [f"Section [{s.section_id}] {s.title}:\n{s.text}"]
        if s.flagged:
            part.append("Claims to fix:\n" + "\n".join(f"{n}. {text}\n   check: {why}" for n, text, why in s.flagged))
        if s.uncited:
            part.append("Papers with evidence not cited yet: " + ", ".join(f"[@{p}]" for p in s.uncited))
        part.append(f"Evidence of [{s.section_id}]:\n{s.evidence or '(none)'}")
        parts.append("\n\n".join(part))
    return messages("repair", REPAIR_SYSTEM, "\n\n---\n\n".join(parts), language=language, answer=json_only(
        '{"fixes": [{"claim": 2, "text": "Caching lowers tail latency in two studies [@lee-2021-ab12cd]."}], '
        '"additions": [{"section_id": "s4", "text": "Batching trades latency for throughput [@kim-2020-9f8e7d]."}]}'))
