"""Issue 16 §8: outputs are written through fresh temp files (no planted link is followed) with one file mode,
file names reach the terminal without escapes or markup, and SIGTERM prints the resume hint like Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from llmxmr import cli
from llmxmr.artifacts import write_artifact
from llmxmr.testing.scripted_server import scripted_server

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1"]


pytestmark = pytest.mark.usefixtures("offline_env")


def test_planted_links_are_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".entropy.json.tmp").symlink_to(victim)  # the old predictable temp name
    (out / "outline-b1.md").symlink_to(victim)  # the target itself
    write_artifact(out, {"event": "artifact", "name": "entropy.json", "text": "[]"})
    write_artifact(out, {"event": "artifact", "name": "outline-b1.md", "text": "# O"})
    assert victim.read_text() == "keep me"
    assert (out / "entropy.json").read_text() == "[]"
    assert not (out / "outline-b1.md").is_symlink()


def test_every_output_has_one_mode_and_file_names_are_printed_inert(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Locks\n\nMutexes and semaphores order access to shared state.\n")
    (folder / "b.md").write_text("# Queues\n\nBounded queues give back-pressure between producers.\n")
    (folder / "\x1b]0;pwned\x07[bold red]x.bin").write_bytes(b"\x00\x01")
    # A loaded text file's title comes from its name: the escape must not reach survey.md either.
    (folder / "\x1b[31mred\x1b[0m [link=x]notes.txt").write_text("Spinlocks waste cycles while waiting for a lock.\n")
    out = tmp_path / "out"
    with scripted_server() as stub:
        code = cli.main(["run", str(folder), "-o", str(out), "--model", "openai:scripted",
                         "--base-url", stub.base_url, *TINY])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;pwned\\x07[bold red]x.bin" in err  # shown, escaped, markup not interpreted
    for name in ("survey.md", "survey.json", "references.bib"):
        if (out / name).exists():
            assert "\x1b" not in (out / name).read_text(), name
    included = json.loads((out / "survey.json").read_text())["papers"]["included"]
    assert any("red" in p["title"] and "notes" in p["title"] for p in included)  # loaded, title without escapes
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()
             if p.is_file() and not p.name.startswith("runs.sqlite")}
    assert {"survey.md", "survey.json", "entropy.json"} <= set(modes)
    assert len(set(modes.values())) == 1, modes


def test_sigterm_prints_the_resume_hint(tmp_path: Path) -> None:
    arrived, release = threading.Event(), threading.Event()

    def hold(stage: str, request: dict[str, Any]) -> dict[str, Any] | None:
        arrived.set()
        release.wait(30)
        return None

    env = {k: v for k, v in os.environ.items() if k not in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2")}
    env.update(OPENAI_API_KEY="x", PYTHONUNBUFFERED="1")
    with scripted_server(fault=hold) as stub:
        proc = subprocess.Popen([sys.executable, "-m", "llmxmr.cli", "run", str(CORPUS), "-o", str(tmp_path),
                                 "--thread", "t", "--model", "openai:scripted", "--base-url", stub.base_url, *TINY],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert arrived.wait(60)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            release.set()
    assert proc.returncode == 1, err
    assert "stopped by SIGTERM; progress is saved" in err
    assert f"llmxmr resume t --db {tmp_path / 'runs.sqlite'} -o {tmp_path}" in err
