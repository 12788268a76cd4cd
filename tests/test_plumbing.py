"""The README's keyless plumbing check runs the whole graph against the loopback scripted server and says
that its text is placeholder (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmxmr.testing import plumbing

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"


def test_plumbing_check_writes_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "out"
    assert plumbing.main([str(CORPUS), "-o", str(out), "--set", "max_blocks=1", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("plumbing check:") and "placeholder" in err
    assert json.loads((out / "survey.json").read_text())["settings"]["model"] == "openai:scripted"
    assert (out / "survey.md").read_text().startswith("# ")
