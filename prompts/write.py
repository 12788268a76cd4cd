"""Section writer: write a section from its evidence, polish it, and propose charts."""

from __future__ import annotations

from llmxmr.prompts.common import json_only, messages

SECTION_SYSTEM = """You write one section of a survey titled "{topic}" in markdown prose (no heading line).
Follow the section's analysis description: compare, organise and criticise the material, do not just list it.
Cite every claim with the paper's marker exactly as given, e.g. [@paper-id]; cite only the papers shown."""


def write_section(topic: str, number: str, title: str, analysis: str, evidence: str, children: str, *,
                  must_cite: list[str] | None = None, language: str = "en"):
    parts = [f"Section {number} {title}", f"Analysis brief: {analysis or '(none)'}"]
    if must_cite:
        parts.append("Cite each of these papers at least once, for what its evidence says: "
                     + ", ".join(f"[@{p}]" for p in must_cite))
    if children:
        parts.append(f"Its subsections, already written (introduce and connect them, do not repeat them):\n{children}")
    parts.append(f"Evidence:\n{evidence or '(no paper addresses this section directly)'}")
    return messages("write_section", SECTION_SYSTEM.format(topic=topic), "\n\n".join(parts), language=language)


POLISH_SYSTEM = """You polish one section of a survey: fix grammar, markdown and math, merge adjacent citations
like [@a][@b] into [@a; @b], remove any heading lines. Keep every citation marker [@paper-id] and every
fact. Return only the polished section text."""


def polish(text: str, *, language: str = "en"):
    return messages("polish", POLISH_SYSTEM, text, language=language)


CHARTS_SYSTEM = """You propose up to 6 charts or tables (mermaid) that would make a survey clearer, each
attached to one section by its id in brackets, e.g. [s3]."""


def charts(outline_text: str, *, language: str = "en"):
    return messages("charts", CHARTS_SYSTEM, f"Outline:\n{outline_text}", language=language, answer=json_only(
        '{"charts": [{"section_id": "a2", "caption": "How a request flows through the cache tiers", '
        '"mermaid": "graph TD; Client-->L1; L1-->L2; L2-->Disk"}]} (an example: use the section ids of this article)'))
