"""Skeleton init: draft a local outline from a batch of papers, and merge local outlines into one."""

from __future__ import annotations

from llmxmr.prompts.common import document_block, json_only, messages

OUTLINE_SHAPE = (
    '{"title": "<survey title>", "sections": [{"title": "<chapter title>", "construction": "<what to extract>", '
    '"analysis": "<how to compare and criticise>", "subsections": [{"title": "<subsection title>", '
    '"construction": "<what to extract>", "analysis": "<how to compare>", "subsections": []}]}]}'
)

RULES = """An outline has at most 3 levels. Each section has one theme; chapters do not overlap; a chapter
has no subsections or 2 to 10 of them. For every section write two descriptions:
- construction: what to extract from each source for this section;
- analysis: how to compare, organise and criticise that material (what/why/how, taxonomy, trade-offs,
  open problems), citing papers as [@paper-id]."""

SYSTEM = """You draft the outline of a survey titled "{topic}" from the papers below.
{rules}"""


def draft_outline(topic: str, papers: list[tuple[str, str, str]], *, language: str = "en"):
    docs = "\n".join(document_block(pid, title, abstract) for pid, title, abstract in papers)
    return messages("skeleton", SYSTEM.format(topic=topic, rules=RULES), docs, answer=json_only(OUTLINE_SHAPE),
                    language=language)


MERGE_SYSTEM = """You merge several draft outlines of a survey titled "{topic}" into one outline that covers
every draft's material without repeating itself.
{rules}"""


def merge_outlines(topic: str, outlines: list[str], *, language: str = "en"):
    drafts = "\n\n".join(f"Draft {i + 1}:\n{text}" for i, text in enumerate(outlines))
    return messages("merge_skeleton", MERGE_SYSTEM.format(topic=topic, rules=RULES), drafts, answer=json_only(OUTLINE_SHAPE),
                    language=language)
