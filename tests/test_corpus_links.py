"""Symbolic links in a folder corpus (issue 16 §2): links that leave the folder are skipped and reported,
loops and dangling links are reported, and `plan` lists every skipped entry with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmxmr import cli
from llmxmr.corpus import load_surveys
from llmxmr.runs import _dir_fingerprint

TEXT = "# A paper\n\nSome words about concurrency and locks, enough to be a document.\n"


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("root:x:0:0:secret outside the corpus\n")
    (outside / "sub").mkdir()
    (outside / "sub" / "more.md").write_text("# More\n\nOutside text.\n")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text(TEXT)
    (corpus / "passwd.txt").symlink_to(outside / "secret.txt")
    (corpus / "elsewhere").symlink_to(outside / "sub")
    (corpus / "gone.md").symlink_to(tmp_path / "missing.md")
    (corpus / "loop.md").symlink_to(corpus / "loop2.md")
    (corpus / "loop2.md").symlink_to(corpus / "loop.md")
    (corpus / "inside.md").symlink_to(corpus / "a.md")  # stays inside: read (a duplicate of a.md)
    return corpus


def test_links_out_of_the_folder_are_skipped_with_reasons(linked: Path) -> None:
    (survey,) = load_surveys(linked)
    texts = " ".join(d.text for d in survey.documents)
    assert "secret" not in texts and "Outside text" not in texts
    reasons = {s.source: s.reason for s in survey.skipped}
    assert "outside the corpus folder" in reasons["passwd.txt"]
    assert str((linked.parent / "outside" / "secret.txt").resolve()) in reasons["passwd.txt"]
    assert "outside the corpus folder" in reasons["elsewhere"]
    assert "dangling" in reasons["gone.md"] and "missing.md" in reasons["gone.md"]
    assert "loop" in reasons["loop.md"] and "loop" in reasons["loop2.md"]
    assert "duplicate of" in reasons["inside.md"]


def test_follow_links_reads_them(linked: Path) -> None:
    (survey,) = load_surveys(linked, follow_links=True)
    texts = " ".join(d.text for d in survey.documents)
    assert "secret" in texts and "Outside text" in texts


def test_fingerprint_ignores_links_out_and_hidden_folders(linked: Path) -> None:
    before = _dir_fingerprint(linked)
    (linked.parent / "outside" / "secret.txt").write_text("changed")
    (linked / ".git").mkdir()
    (linked / ".git" / "pack").write_bytes(b"x" * 1000)
    (linked / "notes.bin").write_bytes(b"\x00\x01")
    assert _dir_fingerprint(linked) == before
    assert _dir_fingerprint(linked, follow_links=True) != before


def test_plan_lists_every_skipped_entry(linked: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", str(linked), "--model", "openai:x"]) == 0
    err = " ".join(capsys.readouterr().out.split())  # the plan, skips included, is the output: stdout
    for name in ("passwd.txt", "elsewhere", "gone.md", "loop.md", "loop2.md", "inside.md"):
        assert f"skipped {name}:" in err
    assert "outside the corpus folder" in err
