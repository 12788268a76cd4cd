"""The store's layout (docs/DESIGN.md): where every record of a run lives, one function per record kind.

This is the only module that knows namespaces and keys: nodes, the model caller, the CLI and the run
helpers read and write through it. Everything of a run sits under `("llmxmr", run_id, ...)`; the durable
response record is shared by all runs (identical requests are never paid twice, across runs too).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

from langgraph.store.base import BaseStore

from llmxmr.core.packing import pack, unpack
from llmxmr.state.records import Digest, Document, Outline

ROOT = "llmxmr"


def safe_label(text: str) -> str:
    # Store namespace labels may not contain periods; thread ids chosen by users might.
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


def ns(run_id: str, *parts: str) -> tuple[str, ...]:
    return (ROOT, safe_label(run_id), *parts)


def _get(store: BaseStore, namespace: tuple[str, ...], key: str) -> dict[str, Any] | None:
    item = store.get(namespace, key)
    return None if item is None else item.value


RESPONSES = (ROOT, "responses")


def get_response(store: BaseStore, key: str) -> dict[str, Any] | None:
    """A recorded model response (unpacked), or None when this request was never answered."""
    value = _get(store, RESPONSES, key)
    return None if value is None else unpack(value)


def put_response(store: BaseStore, key: str, record: dict[str, Any]) -> None:
    store.put(RESPONSES, key, pack(record))


def get_spent(store: BaseStore, run_id: str) -> dict[str, int] | None:
    """The run's spending so far (calls incl. retries and repairs, tokens): a resumed run continues the count."""
    return _get(store, ns(run_id, "meta"), "spent")


def put_spent(store: BaseStore, run_id: str, spent: dict[str, int]) -> None:
    store.put(ns(run_id, "meta"), "spent", spent)


def get_batch(store: BaseStore, run_id: str, round_id: str) -> dict[str, Any] | None:
    """A Batch API job of this run: {"batch_id", "stage", "lines", "status", "collected"}; written right
    after the job is created, so a run killed while it waits collects it on resume instead of submitting again."""
    return _get(store, ns(run_id, "batches"), round_id)


def put_batch(store: BaseStore, run_id: str, round_id: str, record: dict[str, Any]) -> None:
    store.put(ns(run_id, "batches"), round_id, record)
def get_concurrency(store: BaseStore, run_id: str) -> dict[str, dict[str, int]]:
    """Per model spec, the adaptive in-flight limit (start, max, settled, lowest, decreases, increases):
    the run report shows it, and a resumed run starts from the settled limit."""
    return _get(store, ns(run_id, "meta"), "concurrency") or {}


def put_concurrency(store: BaseStore, run_id: str, value: dict[str, dict[str, int]]) -> None:
    store.put(ns(run_id, "meta"), "concurrency", value)


# A password in a base URL (http://user:pass@host) is never written to the store: it stays in this process,
# by run id, and a new process must be given the URL again (the CLI asks for --base-url on resume).
_BASE_URL_SECRETS: dict[str, str] = {}
_SECRETS_LOCK = threading.Lock()


def put_settings(store: BaseStore, run_id: str, settings: dict[str, Any]) -> None:
    from llmxmr.state.context import redact_url

    real = settings.get("base_url")
    shown = redact_url(real)
    if shown != real:
        with _SECRETS_LOCK:
            _BASE_URL_SECRETS[run_id] = real
        settings = {**settings, "base_url": shown}
    store.put(ns(run_id, "meta"), "settings", settings)


def get_settings(store: BaseStore, run_id: str) -> dict[str, Any] | None:
    value = _get(store, ns(run_id, "meta"), "settings")
    if value is not None and has_redacted_base_url(value):
        with _SECRETS_LOCK:
            real = _BASE_URL_SECRETS.get(run_id)
        if real is not None:
            value = {**value, "base_url": real}
    return value


def has_redacted_base_url(settings: dict[str, Any]) -> bool:
    """The saved base URL had a password that was not stored (and this process does not know it)."""
    return ":***@" in str(settings.get("base_url") or "")


def put_document(store: BaseStore, run_id: str, doc: Document, bounds: list[tuple[int, int]] | None = None) -> None:
    """A document; one of several chunks (`bounds`) is stored once, as its chunks: the document record keeps
    its metadata and the chunk count, and nothing ever needs the whole text in memory at once (a map task
    reads its chunk, the skeleton and digests a head, the citation check a bounded prefix)."""
    if bounds is None or len(bounds) < 2:
        store.put(ns(run_id, "docs"), doc.paper_id, doc.model_dump())
        return
    for i, (a, b) in enumerate(bounds):
        # What lies between this chunk and the next (a separator the splitter dropped) is kept with it, so
        # the chunks put back together are the text, character for character (passage offsets stay true).
        after = doc.text[b:bounds[i + 1][0] if i + 1 < len(bounds) else len(doc.text)]
        before = doc.text[:a] if i == 0 else ""
        _put_chunk(store, run_id, doc.paper_id, i, len(bounds), doc.title, doc.text[a:b], before, after)
    store.put(ns(run_id, "docs"), doc.paper_id, {**doc.model_dump(exclude={"text"}), "text": "", "chunks": len(bounds)})


def _document_record(store: BaseStore, run_id: str, paper_id: str) -> dict[str, Any]:
    value = _get(store, ns(run_id, "docs"), paper_id)
    if value is None:
        raise LookupError(
            f"document {paper_id} of run {run_id} is not in the store: this run was started without a "
            "persistent store and cannot be resumed; start it again"
        )
    return dict(value)  # a copy: an in-memory store hands out the stored dict itself


def get_document(store: BaseStore, run_id: str, paper_id: str, max_chars: int | None = None) -> Document:
    """The document; its text whole, or (`max_chars`) at least its first `max_chars` characters where it is
    longer: a document stored as chunks is read chunk by chunk up to there, never further."""
    value = _document_record(store, run_id, paper_id)
    chunks = int(value.pop("chunks", 0) or 0)
    if chunks:
        parts, size = [], 0
        for i in range(chunks):
            if max_chars is not None and size >= max_chars:
                break
            chunk = get_chunk(store, run_id, paper_id, i) or {}
            for part in (chunk.get("before", ""), chunk.get("text", ""), chunk.get("after", "")):
                parts.append(part)
                size += len(part)
        value["text"] = "".join(parts)
    return Document(**value)


def get_document_info(store: BaseStore, run_id: str, paper_id: str) -> Document:
    """The document's title, abstract and metadata, without its text (text "")."""
    value = _document_record(store, run_id, paper_id)
    value.pop("chunks", None)
    return Document(**{**value, "text": ""})


def put_chunk_bounds(store: BaseStore, run_id: str, paper_id: str, bounds: list[tuple[int, int]]) -> None:
    store.put(ns(run_id, "chunks"), paper_id, {"bounds": [list(b) for b in bounds]})


def get_chunk_bounds(store: BaseStore, run_id: str, paper_id: str) -> list[tuple[int, int]] | None:
    value = _get(store, ns(run_id, "chunks"), paper_id)
    return None if value is None else [tuple(b) for b in value["bounds"]]


def _put_chunk(store: BaseStore, run_id: str, paper_id: str, index: int, count: int, title: str, text: str,
               before: str = "", after: str = "") -> None:
    """One chunk of a document's text, on its own: a map task reads its chunk, never the whole document
    (a 200 MB document in thousands of chunks would otherwise be loaded once per chunk). Packed: text compresses."""
    value: dict[str, Any] = {"text": text, "of": count, "title": title}
    if before:
        value["before"] = before
    if after:
        value["after"] = after
    store.put(ns(run_id, "chunktext"), f"{paper_id}:{index}", pack(value))


def get_chunk(store: BaseStore, run_id: str, paper_id: str, index: int) -> dict[str, Any] | None:
    """{"text", "of" (chunks of the document), "title"}, or None for a run prepared before chunks were stored."""
    value = _get(store, ns(run_id, "chunktext"), f"{paper_id}:{index}")
    return None if value is None else unpack(value)


def put_chunk_notes(store: BaseStore, run_id: str, paper_id: str, chunk: int, notes: list[str]) -> None:
    store.put(ns(run_id, "chunknotes"), f"{paper_id}:{chunk}", {"notes": notes})


def get_chunk_notes(store: BaseStore, run_id: str, paper_id: str, chunk: int) -> list[str]:
    value = _get(store, ns(run_id, "chunknotes"), f"{paper_id}:{chunk}")
    return [] if value is None else list(value["notes"])


def add_paper_titles(store: BaseStore, run_id: str, titles: list[str]) -> None:
    """The run's paper titles, which are never section headings (llmxmr.core.headings); an update adds its
    new papers' to the run's."""
    known = get_paper_titles(store, run_id)
    store.put(ns(run_id, "meta"), "paper_titles", {"titles": list(dict.fromkeys([*known, *titles]))})


def get_paper_titles(store: BaseStore, run_id: str) -> list[str]:
    value = _get(store, ns(run_id, "meta"), "paper_titles")
    return [] if value is None else list(value["titles"])


def put_notes(store: BaseStore, run_id: str, paper_id: str, notes: list[str]) -> None:
    store.put(ns(run_id, "notes"), paper_id, {"notes": notes})


def get_notes(store: BaseStore, run_id: str, paper_id: str) -> list[str] | None:
    value = _get(store, ns(run_id, "notes"), paper_id)
    return None if value is None else list(value["notes"])


def put_outline(store: BaseStore, run_id: str, key: str, outline: Outline) -> None:
    # Hundreds of candidates per run: packed (llmxmr.core.packing); the final one is also in the output.
    store.put(ns(run_id, "outlines"), key, pack(outline.model_dump()))


# Outline keys are content hashes, so a key names one outline in every run and store: the same base
# outline is read by every digest, feedback and modify task of a pass. Readers never mutate an outline
# (`apply_edits` works on a deep copy).
_OUTLINES: OrderedDict[str, Outline] = OrderedDict()
_OUTLINES_LOCK = threading.Lock()
OUTLINE_CACHE = 256


def get_outline(store: BaseStore, run_id: str, key: str) -> Outline:
    with _OUTLINES_LOCK:
        outline = _OUTLINES.get(key)
        if outline is not None:
            _OUTLINES.move_to_end(key)
            return outline
    value = _get(store, ns(run_id, "outlines"), key)
    if value is None:
        raise LookupError(f"outline {key} of run {run_id} is not in the store")
    outline = Outline(**unpack(value))
    with _OUTLINES_LOCK:
        _OUTLINES[key] = outline
        while len(_OUTLINES) > OUTLINE_CACHE:
            _OUTLINES.popitem(last=False)
    return outline


def put_digest(store: BaseStore, run_id: str, digest: Digest) -> None:
    store.put(ns(run_id, "digests", digest.outline_key), digest.paper_id, digest.model_dump())


def get_digest(store: BaseStore, run_id: str, outline_key: str, paper_id: str) -> Digest | None:
    value = _get(store, ns(run_id, "digests", outline_key), paper_id)
    return None if value is None else Digest(**value)


def get_digests(store: BaseStore, run_id: str, outline_key: str, paper_ids: list[str]) -> list[Digest]:
    out = []
    for pid in paper_ids:
        d = get_digest(store, run_id, outline_key, pid)
        out.append(d if d is not None else Digest(paper_id=pid, outline_key=outline_key))
    return out


def put_passages(store: BaseStore, run_id: str, paper_id: str, spans: list[tuple[int, int]]) -> None:
    """The character spans a paper is cut into for the citation check (once per run)."""
    store.put(ns(run_id, "passages"), paper_id, {"spans": [list(s) for s in spans]})


def get_passages(store: BaseStore, run_id: str, paper_id: str) -> list[tuple[int, int]] | None:
    value = _get(store, ns(run_id, "passages"), paper_id)
    return None if value is None else [tuple(s) for s in value["spans"]]


def put_check_batch(store: BaseStore, run_id: str, outline_key: str, round_: int, batch: int,
                    pairs: list[list[Any]]) -> None:
    """One verifier call's (section, claim index, paper) pairs: the plan lives here, not in checkpoints."""
    store.put(ns(run_id, "checks", outline_key), f"r{round_}:b{batch}", pack({"pairs": pairs}))


def get_check_batch(store: BaseStore, run_id: str, outline_key: str, round_: int, batch: int) -> list[list[Any]]:
    value = _get(store, ns(run_id, "checks", outline_key), f"r{round_}:b{batch}")
    return [] if value is None else list(unpack(value)["pairs"])


def put_verdicts(store: BaseStore, run_id: str, outline_key: str, round_: int, batch: int,
                 records: list[dict[str, Any]]) -> None:
    """One verifier call's verdict records (claim text, paper, verdict, passage, confidence, reason)."""
    store.put(ns(run_id, "verdicts", outline_key), f"r{round_}:b{batch}", pack({"records": records}))


def get_verdicts(store: BaseStore, run_id: str, outline_key: str, round_: int, batches: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for batch in range(batches):
        value = _get(store, ns(run_id, "verdicts", outline_key), f"r{round_}:b{batch}")
        out += [] if value is None else list(unpack(value)["records"])
    return out


def put_claim_checks(store: BaseStore, run_id: str, outline_key: str, section_id: str, records: list[dict[str, Any]],
                     counts: dict[str, int] | None = None, version: int | None = None) -> None:
    """A section's claims with their final verdicts (survey.json's `verification.claims`), the section's
    counts and the survey version whose check made them (an update keeps the sections it does not check)."""
    store.put(ns(run_id, "claims", outline_key), section_id, pack({"claims": records, "counts": counts, "version": version}))


def get_claim_record(store: BaseStore, run_id: str, outline_key: str, section_id: str) -> dict[str, Any]:
    """{"claims", "counts", "version"} of a section (counts and version None when not recorded)."""
    value = _get(store, ns(run_id, "claims", outline_key), section_id)
    record = {"claims": [], "counts": None, "version": None}
    return record if value is None else {**record, **unpack(value)}


def get_claim_checks(store: BaseStore, run_id: str, outline_key: str, section_id: str) -> list[dict[str, Any]]:
    return list(get_claim_record(store, run_id, outline_key, section_id)["claims"])


def copy_claim_checks(store: BaseStore, run_id: str, from_key: str, to_key: str, section_id: str) -> None:
    """A kept section's claim record, moved to a refined outline's key as it is."""
    record = get_claim_record(store, run_id, from_key, section_id)
    put_claim_checks(store, run_id, to_key, section_id, record["claims"], record["counts"], record["version"])


def put_section(store: BaseStore, run_id: str, outline_key: str, section_id: str, text: str) -> str:
    store.put(ns(run_id, "sections", outline_key), section_id, {"text": text})
    return f"{outline_key}/{section_id}"


def get_section(store: BaseStore, run_id: str, ref: str) -> str:
    outline_key, section_id = ref.split("/", 1)
    value = _get(store, ns(run_id, "sections", outline_key), section_id)
    return "" if value is None else value["text"]
