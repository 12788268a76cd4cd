"""Convolution units: merge suggestions into one, and apply a suggestion to the outline (modify)."""

from __future__ import annotations

from llmxmr.prompts.common import json_only, messages
from llmxmr.prompts.skeleton import OUTLINE_SHAPE, RULES

MERGE_SYSTEM = """You merge several suggestions for improving a survey outline into ONE coherent suggestion.
Each comes with the score (0-10) the outline reached when it was applied alone and the judge's rationale:
keep what raised scores, drop what lowered them, resolve conflicts, keep the citations [@paper-id] and the
section ids the suggestions name, e.g. [s3]."""


def merge_suggestions(outline_text: str, scored: list[tuple[str, float | None, str]], *, language: str = "en"):
    """The suggestions in the order the layer drew them: ordered alike (say best first, which would share
    more prompt prefix), units that drew one set in two orders would send one request, answered once from
    the record: fewer units than the method runs (bench/FINDINGS.md)."""
    items = "\n\n".join(
        f"Suggestion {i + 1} (score {'n/a' if s is None else f'{s:.1f}'}):\n{text}\nJudge: {why or '(none)'}"
        for i, (text, s, why) in enumerate(scored)
    )
    user = f"Outline:\n{outline_text}\n\n{items}"
    return messages("merge_suggestions", MERGE_SYSTEM, user, answer=json_only(
        '{"suggestion": "Merge the two chapters on caching into one, and add a subsection comparing eviction '
        'policies by hit rate."} (an example: write the merged suggestion)'), language=language)


EDIT_SYSTEM = f"""You apply a suggestion to a survey outline by returning edits. Each outline line starts with
a section id in brackets, e.g. [s3]; refer to sections by these ids only. The outline is shown with its
titles; the sections the suggestion names follow with their descriptions (keep the others unless the
suggestion says so).
Edit operations:
- add: a new section with title, construction and analysis under parent_id (null = top level) at position;
- remove: section_id and its subsections;
- move: section_id to parent_id (null = top level) at position;
- retitle: section_id gets a new title;
- describe: section_id gets a new construction and/or analysis.
{RULES}"""


EDIT_EXAMPLE_TITLE = "Concurrent and incremental marking"  # a heading no survey of ours should copy


def modify_edits(outline_text: str, suggestion: str, *, named: str = "", language: str = "en"):
    """`outline_text`: the base outline (titles), shared by every modify of a layer, so it comes first;
    `named`: the descriptions of the sections the suggestion names, which vary per call, after it."""
    described = f"Sections the suggestion names:\n{named}\n\n" if named else ""
    user = f"Outline:\n{outline_text}\n\n{described}Suggestion:\n{suggestion}"
    return messages("modify", EDIT_SYSTEM, user, language=language, answer=json_only(
        f'{{"edits": [{{"op": "retitle", "section_id": "a2", "title": "{EDIT_EXAMPLE_TITLE}"}}]}} '
        "(an example: use the section ids in brackets in the outline above; at most 12 edits)"))


REWRITE_SYSTEM = f"""You apply a suggestion to a survey outline and return the whole improved outline.
{RULES}"""


def modify_rewrite(outline_text: str, suggestion: str, *, language: str = "en"):
    user = f"Outline:\n{outline_text}\n\nSuggestion:\n{suggestion}"
    return messages("modify", REWRITE_SYSTEM, user, answer=json_only(OUTLINE_SHAPE), language=language)
