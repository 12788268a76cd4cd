"""Outline digest: read one paper against the current outline.

Laid out for prefix caching: the instructions and the outline (the same for every paper of a pass) come
first, byte-identical; the paper and its id last."""

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


def digest_paper(outline_text: str, paper_id: str, title: str, body: str, *, language: str = "en"):
    user = (f"Outline:\n{outline_text}\n\n{document_block(paper_id, title, body)}\n\n"
            f"{example_answer(_example(paper_id))}\nCite this paper as [@{paper_id}].")
    return messages("digest", SYSTEM, user, language=language, answer=ANSWER)
