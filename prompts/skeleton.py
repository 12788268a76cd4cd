"""Skeleton init: draft a local outline from a batch of papers, and merge local outlines into one."""

from __future__ import annotations

import json
import re

from llmxmr.prompts.common import document_block, json_only, messages

# A filled example for another survey, for a whole-outline rewrite (reference-mode modify), where the model
# has the outline it rewrites in front of it; drafts and merges build theirs from the survey (outline_example).
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


def _example_heads(topic: str) -> list[str]:
    return [f"Foundations of {topic}", f"Comparison of approaches to {topic}", f"Open problems in {topic}"]


# The fixed example's headings, read from OUTLINE_SHAPE: copied, they would be another survey's chapters.
SHAPE_TITLES = tuple(re.findall(r'"title": "([^"]+)"', OUTLINE_SHAPE))


def example_titles(topic: str) -> list[str]:
    """Every heading an outline prompt of this survey shows as an example: never a heading of its own
    (llmxmr.core.headings drops one a model copied)."""
    return [*_example_heads(topic), *SHAPE_TITLES]


def outline_example(topic: str) -> str:
    """A filled outline built from the survey's topic (never from document text, which stays inside its
    delimiters): the 135M demo model copied a fixed example on another subject verbatim (its chapter
    titles became the article's), so what it copies must at least be about this survey."""
    heads = _example_heads(topic)
    sections = [{"title": h, "construction": f"What each paper reports about {h}: methods, settings and figures.",
                 "analysis": f"Compare the papers on {h}: trade-offs, agreements, gaps, citing each by its id.",
                 "subsections": []} for h in heads]
    example = json.dumps({"title": topic, "sections": sections}, ensure_ascii=False)
    return f"{example} (an example: write your own titles and descriptions, with as many chapters as the material needs)"


def draft_outline(topic: str, papers: list[tuple[str, str, str]], *, language: str = "en"):
    docs = "\n".join(document_block(pid, title, abstract) for pid, title, abstract in papers)
    return messages("skeleton", SYSTEM.format(topic=topic, rules=RULES), docs, answer=json_only(outline_example(topic)),
                    language=language)


MERGE_SYSTEM = """You merge several draft outlines of a survey titled "{topic}" into one outline that covers
every draft's material without repeating itself.
{rules}"""


def merge_outlines(topic: str, outlines: list[str], *, language: str = "en"):
    drafts = "\n\n".join(f"Draft {i + 1}:\n{text}" for i, text in enumerate(outlines))
    return messages("merge_skeleton", MERGE_SYSTEM.format(topic=topic, rules=RULES), drafts,
                    answer=json_only(outline_example(topic)), language=language)
