"""Outline digest: read one paper against the current outline.

Laid out for prefix caching: the instructions and the outline (the same for every paper of a pass) come
first, byte-identical; the paper and its id last. A pass after a refinement block may ask for only some
sections (`again`: those new or changed since the paper was last read); the outline then shows the
construction of those only, and names them."""

from __future__ import annotations

import json

from llmxmr.prompts.common import document_block, example_answer, messages

SYSTEM = """You read one paper for a survey against its outline. Each outline line starts with a section id
in brackets, e.g. [s3]. For every section the paper is relevant to, follow that section's construction
description and write the paper's relevant content, analysed critically, citing it with the marker given
after the document. Skip sections it says nothing about. Then suggest one change to the outline that would
use this paper better."""

# The format, fixed for every call (system message); the filled example after the document cites this paper.
ANSWER = ('Answer with one JSON object only, no prose: "sections", a list of objects each with "section_id" '
          '(an id in brackets from the outline) and "content" (what this paper contributes to that section, '
          'citing it), and "suggestion" (one change to the outline).')


def _example(paper_id: str) -> str:
    """Filled, never from the document (its text stays inside its delimiters), and citing this paper's own
    id: the 135M demo model copies examples verbatim. The section id "a2" is not an id of any outline; the
    schema's enum allows only the real ones."""
    content = f"What this paper reports for that section, with its figures [@{paper_id}]."
    example = json.dumps({"sections": [{"section_id": "a2", "content": content}],
                          "suggestion": "Add a subsection for the part of this paper no section covers yet."})
    return f"{example} (an example: use only the section ids in brackets in the outline above)"


def again_note(again: list[str]) -> str:
    """Names the sections a later reading asks for (shared by every paper of the pass: before the paper)."""
    named = ", ".join(f"[{sid}]" for sid in again)
    return (f"This reading asks only for {named}: sections that are new or changed since the paper was read "
            "against this survey's outline. Its content for the other sections is already recorded; answer "
            "for these only (none, when the paper says nothing about them), and suggest a change to the whole outline.")


def digest_paper(outline_text: str, paper_id: str, title: str, body: str, *, language: str = "en",
                 again: list[str] | None = None):
    asked = f"{again_note(again)}\n\n" if again is not None else ""
    user = (f"Outline:\n{outline_text}\n\n{asked}{document_block(paper_id, title, body)}\n\n"
            f"{example_answer(_example(paper_id))}\nCite this paper as [@{paper_id}].")
    return messages("digest", SYSTEM, user, language=language, answer=ANSWER)
