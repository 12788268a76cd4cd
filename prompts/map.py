"""Map: read one document (or one chunk of it) once and keep what matters for the survey."""

from __future__ import annotations

from llmxmr.prompts.common import document_block, json_only, messages

SYSTEM = """You read one source document for a survey titled "{topic}".
Extract its key claims, methods, results and numbers that matter for that survey, as short factual notes.
Keep concrete figures and names. Do not invent anything that the document does not say."""


def map_chunk(topic: str, paper_id: str, title: str, text: str, *, part: str = "", language: str = "en"):
    where = f" (part {part})" if part else ""
    return messages("map", SYSTEM.format(topic=topic), document_block(paper_id, title + where, text), language=language,
                    answer=json_only('{"notes": ["<one finding with its figures>", "<another finding>"]} (at most 8 notes)'))


REDUCE_SYSTEM = """You merge the notes taken from consecutive parts of one document into one set of notes
for a survey titled "{topic}". Remove repetition, keep every distinct claim, method, result and number."""


def reduce_notes(topic: str, paper_id: str, title: str, chunk_notes: list[list[str]], *, language: str = "en"):
    parts = "\n".join(f"Part {i + 1}:\n" + "\n".join(f"- {n}" for n in notes) for i, notes in enumerate(chunk_notes))
    return messages("reduce_notes", REDUCE_SYSTEM.format(topic=topic), document_block(paper_id, title, parts),
                    answer=json_only('{"notes": ["<one finding with its figures>"]} (at most 8 notes)'), language=language)
