"""Map: read one document (or one chunk of it) once and keep what matters for the survey."""

from __future__ import annotations

import json
import re

from llmxmr.prompts.common import document_block, example_answer, json_only, messages

SYSTEM = """You read one source document for a survey titled "{topic}".
Extract its key claims, methods, results and numbers that matter for that survey, as short factual notes.
Keep concrete figures and names. Do not invent anything that the document does not say."""


# The fixed format (system message); the example after the document is filled from the call's own text.
NOTES_SHAPE = '{"notes": [...]} (a list of strings, at most 8 notes, each one finding of this document with its figures)'


def first_sentence(text: str, limit: int = 160) -> str:
    """The text's first sentence (cut to `limit` characters), for examples built from the call's own
    material: the 135M demo model copies a prompt's example verbatim, and a fixed example from another
    field then became an invented "finding" in the article."""
    flat = " ".join(text.split()).lstrip("-# ")
    match = re.match(r"(.+?[.!?])(\s|$)", flat)
    sentence = match.group(1) if match else flat
    return sentence[:limit].rstrip() or "The document's main finding, with its figures."


def notes_example(text: str) -> str:
    example = json.dumps({"notes": [first_sentence(text)]}, ensure_ascii=False)
    return f"{example} (at most 8 notes, each one finding of this document with its figures)"


def map_chunk(topic: str, paper_id: str, title: str, text: str, *, part: str = "", language: str = "en"):
    where = f" (part {part})" if part else ""
    user = f"{document_block(paper_id, title + where, text)}\n\n" + example_answer(notes_example(text))
    return messages("map", SYSTEM.format(topic=topic), user, language=language, answer=json_only(NOTES_SHAPE))


REDUCE_SYSTEM = """You merge the notes taken from consecutive parts of one document into one set of notes
for a survey titled "{topic}". Remove repetition, keep every distinct claim, method, result and number."""


def reduce_notes(topic: str, paper_id: str, title: str, chunk_notes: list[list[str]], *, language: str = "en"):
    parts = "\n".join(f"Part {i + 1}:\n" + "\n".join(f"- {n}" for n in notes) for i, notes in enumerate(chunk_notes))
    first = next((n for notes in chunk_notes for n in notes), "")
    user = f"{document_block(paper_id, title, parts)}\n\n" + example_answer(notes_example(first))
    return messages("reduce_notes", REDUCE_SYSTEM.format(topic=topic), user, language=language,
                    answer=json_only(NOTES_SHAPE))
