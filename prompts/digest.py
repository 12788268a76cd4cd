"""Outline digest: read one paper against the current outline.

Laid out for prefix caching: the instructions and the outline (the same for every paper of a pass) come
first, byte-identical; the paper and its id last."""

from __future__ import annotations

from llmxmr.prompts.common import document_block, json_only, messages

SYSTEM = """You read one paper for a survey against its outline. Each outline line starts with a section id
in brackets, e.g. [s3]. For every section the paper is relevant to, follow that section's construction
description and write the paper's relevant content, analysed critically, citing it with the marker given
after the document. Skip sections it says nothing about. Then suggest one change to the outline that would
use this paper better."""


def digest_paper(outline_text: str, paper_id: str, title: str, body: str, *, language: str = "en"):
    user = f"Outline:\n{outline_text}\n\n{document_block(paper_id, title, body)}\n\nCite this paper as [@{paper_id}]."
    return messages("digest", SYSTEM, user, language=language, answer=json_only(
        '{"sections": [{"section_id": "s3", "content": "<what this paper contributes to s3, citing it>"}], "suggestion": "<one outline change>"}'))
