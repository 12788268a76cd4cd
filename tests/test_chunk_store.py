"""Memory that grows with one document (issue 16 §5): a map task reads its own chunk from the store, never
the whole document (a 200 MB document in thousands of chunks was loaded once per chunk)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from llmxmr import cli, run_store
from llmxmr.testing.scripted_server import scripted_server

TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


pytestmark = pytest.mark.usefixtures("offline_env")


def test_map_tasks_read_chunks_not_the_whole_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    words = " ".join(f"lock{i % 97} queue{i % 89} scheduling." for i in range(1500))
    (folder / "long.md").write_text(f"# A long paper on locks\n\n{words}\n")
    (folder / "short.md").write_text("# Queues\n\nBounded queues give back-pressure between producers.\n")
    readers: list[str] = []
    real = run_store.get_document

    def spy(store, run_id, paper_id):
        readers.append((inspect.stack()[1].function, paper_id))
        return real(store, run_id, paper_id)

    monkeypatch.setattr(run_store, "get_document", spy)
    with scripted_server() as stub:
        code = cli.main(["run", str(folder), "-o", str(tmp_path / "out"), "--model", "openai:scripted",
                         "--base-url", stub.base_url, "--set", "context_window=1500", *TINY])
        maps = [r for r in stub.chat_requests if "Task: map" in r["body"]["messages"][0]["content"]]
    assert code == 0
    assert len(maps) > 3  # the long document was read in several chunks
    # Only a one-chunk document is read whole by the map path (its one chunk is the document).
    map_reads = {pid for fn, pid in readers if fn in ("map_chunk", "_chunk", "reduce_notes")}
    assert map_reads and all(pid.startswith("queues") for pid in map_reads), readers
