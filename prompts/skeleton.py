"""Skeleton init: draft a local outline from a batch of papers, and merge local outlines into one."""

from __future__ import annotations

from llmxmr.prompts.common import document_block, json_only, messages

# A filled example for another survey (garbage collection), so that a small model sees real titles and
# descriptions instead of <placeholder> sketches it would copy; the prompt says to write its own.
OUTLINE_SHAPE = (
    '{"title": "Garbage collection in managed runtimes", "sections": [{"title": "Tracing collectors", '
    '"construction": "Which tracing algorithm the paper uses, its pause times and heap overhead.", '
    '"analysis": "Compare mark-sweep and copying designs by pause time and throughput, citing [@paper-id].", '
    '"subsections": [{"title": "Generational collection", "construction": "How generations are sized and '
    'promoted.", "analysis": "Why the generational hypothesis holds or fails for each workload.", '
    '"subsections": []}, {"title": "Concurrent marking", "construction": "How the collector marks while the '
    'program runs.", "analysis": "Trade-offs of write barriers against pause times.", "subsections": []}]}]} '
    "(an example for another survey: write the titles and descriptions for the papers above, with as many "
    "chapters as they need)"
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
    user = f"{docs}\n\n" + json_only(OUTLINE_SHAPE)
    return messages("skeleton", SYSTEM.format(topic=topic, rules=RULES), user, language=language)


MERGE_SYSTEM = """You merge several draft outlines of a survey titled "{topic}" into one outline that covers
every draft's material without repeating itself.
{rules}"""


def merge_outlines(topic: str, outlines: list[str], *, language: str = "en"):
    drafts = "\n\n".join(f"Draft {i + 1}:\n{text}" for i, text in enumerate(outlines))
    user = f"{drafts}\n\n" + json_only(OUTLINE_SHAPE)
    return messages("merge_skeleton", MERGE_SYSTEM.format(topic=topic, rules=RULES), user, language=language)
