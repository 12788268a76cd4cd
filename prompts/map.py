"""Map: read one document (or one chunk of it) once and keep what matters for the survey."""

from __future__ import annotations

import json

from llmxmr.prompts.common import document_block, json_only, messages

SYSTEM = """You read one source document for a survey titled "{topic}".
Extract its key claims, methods, results and numbers that matter for that survey, as short factual notes.
Keep concrete figures and names. Do not invent anything that the document does not say."""


def notes_example(topic: str) -> str:
    """Filled from the survey's topic, never from the document: document text stays inside its delimiters
    (a planted instruction must not reach the instructions), and the 135M demo model copies examples
    verbatim, so a fixed example from another field became an invented "finding" in its article."""
    example = json.dumps({"notes": [f"One finding of this document about {topic}, with the figures it gives."]},
                         ensure_ascii=False)
    return f"{example} (at most 8 notes, each one finding of this document with its figures)"


def map_chunk(topic: str, paper_id: str, title: str, text: str, *, part: str = "", language: str = "en"):
    where = f" (part {part})" if part else ""
    user = document_block(paper_id, title + where, text)
    return messages("map", SYSTEM.format(topic=topic), user, language=language, answer=json_only(notes_example(topic)))


REDUCE_SYSTEM = """You merge the notes taken from consecutive parts of one document into one set of notes
for a survey titled "{topic}". Remove repetition, keep every distinct claim, method, result and number."""


def reduce_notes(topic: str, paper_id: str, title: str, chunk_notes: list[list[str]], *, language: str = "en"):
    parts = "\n".join(f"Part {i + 1}:\n" + "\n".join(f"- {n}" for n in notes) for i, notes in enumerate(chunk_notes))
    return messages("reduce_notes", REDUCE_SYSTEM.format(topic=topic), document_block(paper_id, title, parts),
                    language=language, answer=json_only(notes_example(topic)))
