"""The evaluator's judge: one criterion of an article or of one section, rated 0-9 after a rationale.
(Faithfulness reuses the citation check's verify prompt: the same claims-against-passages question.)"""

from __future__ import annotations

import hashlib

from llmxmr.prompts.common import json_only, messages

ARTICLE_CRITERIA = {
    "structure": "Structure: the outline organises the topic into distinct, well-ordered themes without redundancy; "
                 "each section has one theme; the depth and breadth fit the material.",
    "relevance": "Relevance: every part of the article serves its title's topic; nothing off-topic, nothing central "
                 "to the topic missing from the outline.",
}
SECTION_CRITERIA = {
    "language": "Language: clear, precise, fluent academic prose; correct grammar; no repetition or filler.",
    "criticalness": "Criticalness: the section compares and evaluates the works it cites (strengths, limits, "
                    "disagreements, open problems) instead of listing them one after another.",
}
SYSTEM = """You evaluate a survey article on one criterion only.
{criterion}
Give your reasoning first, then the score as a single digit from 0 (worst) to 9 (best)."""


def judge_criterion(criterion: str, title: str, heading: str, body: str, *, language: str = "en"):
    """`criterion`: a key of ARTICLE_CRITERIA or SECTION_CRITERIA; `heading`: the section's, or "" for the article."""
    text = ARTICLE_CRITERIA.get(criterion) or SECTION_CRITERIA[criterion]
    where = f"Section: {heading}\n\n" if heading else ""
    user = f"Survey title: {title}\n\n{where}{body}"
    return messages("eval_judge", SYSTEM.format(criterion=text), user, language=language, answer=json_only(
        '{"rationale": "Sections follow the topic in a sensible order, but two repeat each other and few claims '
        'are compared.", "score": 7}'))


CLAIMS_SYSTEM = """You list the distinct factual claims a survey section makes: each one short, self-contained
sentence stating one fact, finding or comparison. Skip transitions, opinions about the survey itself and
repetitions. At most 40."""


def atomic_claims(title: str, heading: str, body: str, *, language: str = "en"):
    user = f"Survey title: {title}\n\nSection: {heading}\n\n{body}"
    return messages("eval_claims", CLAIMS_SYSTEM, user, language=language, answer=json_only(
        '{"claims": ["Bounded queues give producers back-pressure.", "asyncio.Lock is not thread-safe."]}'))


def prompt_hashes() -> dict[str, str]:
    """sha256 (first 16 hex) of every judge instruction: a result says exactly what its judge was asked."""
    from llmxmr.prompts.verify import VERIFY_SYSTEM

    texts = {k: SYSTEM.format(criterion=v) for k, v in {**ARTICLE_CRITERIA, **SECTION_CRITERIA}.items()}
    texts["faithfulness"] = VERIFY_SYSTEM
    texts["density"] = CLAIMS_SYSTEM
    return {k: hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in texts.items()}
