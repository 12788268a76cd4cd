"""Outline digest: read one paper against the current outline."""

from __future__ import annotations

from llmxmr.prompts.common import document_block, json_only, messages

SYSTEM = """You read one paper for a survey against its outline. Each outline line starts with a section id
in brackets, e.g. [s3]. For every section the paper is relevant to, follow that section's construction
description and write the paper's relevant content, analysed critically, citing it as [@{paper_id}].
Skip sections it says nothing about. Then suggest one change to the outline that would use this paper better."""


def digest_paper(outline_text: str, paper_id: str, title: str, body: str, *, language: str = "en"):
    user = (
        f"Outline:\n{outline_text}\n\n{document_block(paper_id, title, body)}\n\n"
        + json_only('{"sections": [{"section_id": "a2", "content": "The paper measures 40 % shorter pauses with '
                    'concurrent marking than stop-the-world marking on a 16 GB heap [@paper-id]."}], "suggestion": '
                    '"Split the section on tracing into pause-time and throughput studies."} (an example for another '
                    'survey: use only the section ids in brackets in the outline above, and this paper\'s id)')
    )
    return messages("digest", SYSTEM.format(paper_id=paper_id), user, language=language)
