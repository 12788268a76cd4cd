"""Memory that grows with one document (issue 16 §5): a document of several chunks is stored as its chunks and
read chunk by chunk (a map task its own chunk, the skeleton and digests a head, the citation check a bounded
prefix); no read of the store returns the whole document (a 200 MB document was loaded once per chunk)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.store.memory import InMemoryStore

from llmxmr import cli, run_store
from llmxmr.core.packing import unpack
from llmxmr.state.records import Document
from llmxmr.testing.scripted_server import scripted_server

TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


pytestmark = pytest.mark.usefixtures("offline_env")


def test_no_store_read_returns_a_whole_long_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    words = " ".join(f"lock{i % 97} queue{i % 89} scheduling." for i in range(12000))
    (folder / "long.md").write_text(f"# A long paper on locks\n\n{words}\n")
    (folder / "short.md").write_text("# Queues\n\nBounded queues give back-pressure between producers.\n")
    reads: list[tuple[tuple[str, ...], int]] = []  # (namespace, characters of the value) per store read
    real = run_store._get

    def counting(store, namespace, key):
        value = real(store, namespace, key)
        if value is not None:
            reads.append((namespace[2:], len(json.dumps(unpack(value)))))
        return value

    monkeypatch.setattr(run_store, "_get", counting)
    with scripted_server() as stub:
        code = cli.main(["run", str(folder), "-o", str(tmp_path / "out"), "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--set", "context_window=4000", *TINY])
        maps = [r for r in stub.chat_requests if "Task: map" in r["body"]["messages"][0]["content"]]
    assert code == 0
    assert len(maps) > 10  # the long document was read in many chunks
    size = len(words)
    doc_reads = [n for ns, n in reads if ns and ns[0] in ("docs", "chunktext")]
    assert doc_reads and max(doc_reads) < size / 5, max(doc_reads)  # one chunk at a time, never the document
    assert sum(n for ns, n in reads if ns and ns[0] == "chunktext") < 3 * size  # map once, a head, the citation check once


def test_a_document_stored_as_chunks_reads_back_character_for_character() -> None:
    store = InMemoryStore()
    text = "  lead\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(30)) + "\n\n  tail "
    bounds = [(2, 300), (302, 900), (903, len(text) - 7)]
    doc = Document(paper_id="p-1", title="T", text=text, abstract="A", doi="10.1/x")
    run_store.put_document(store, "r", doc, bounds)
    assert run_store.get_document(store, "r", "p-1") == doc
    head = run_store.get_document(store, "r", "p-1", max_chars=100).text
    assert text.startswith(head) and 100 <= len(head) < len(text)  # the first chunk(s) only
    info = run_store.get_document_info(store, "r", "p-1")
    assert (info.text, info.abstract, info.doi) == ("", "A", "10.1/x")
    assert run_store.get_chunk(store, "r", "p-1", 1)["text"] == text[302:900]
