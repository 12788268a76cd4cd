"""The embedded server's thread count: every core on an idle machine, one fewer per core other work keeps
busy (llama.cpp's threads wait for each other at every step), overridable, and a bad override named."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmxmr.models import cpu_share
from llmxmr.models.errors import ModelSetupError


def test_threads_follow_the_free_cores() -> None:
    assert cpu_share.threads_for(2, 1.95) == 2  # idle
    assert cpu_share.threads_for(2, 1.02) == 1  # one core busy with another process
    assert cpu_share.threads_for(2, 0.1) == 1  # both busy: still one thread
    assert cpu_share.threads_for(8, 5.6) == 6
    assert cpu_share.threads_for(4, None) == 4  # cannot tell: every core, as before


def test_free_cores_from_two_readings_of_proc_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    readings = iter([
        "cpu  1000 0 500 8000 100 0 0 0 0 0\ncpu0 ...\n",
        # 400 jiffies later on 2 cores: 150 more idle (+10 iowait), the rest busy: 0.8 of a core free
        "cpu  1180 0 560 8150 110 0 0 0 0 0\ncpu0 ...\n",
    ])
    monkeypatch.setattr(cpu_share, "STAT", stat)
    monkeypatch.setattr(cpu_share.time, "sleep", lambda s: stat.write_text(next(readings)))
    stat.write_text(next(readings))
    assert cpu_share.free_cores(2) == pytest.approx(2 * 160 / 400)
    monkeypatch.setattr(cpu_share, "STAT", tmp_path / "missing")
    assert cpu_share.free_cores(2) is None


def test_the_override_wins_and_a_bad_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_share, "free_cores", lambda cores, sample=0.5: 0.9)
    monkeypatch.delenv(cpu_share.ENV, raising=False)
    assert cpu_share.embedded_threads()[0] == 1
    monkeypatch.setenv(cpu_share.ENV, "3")
    assert cpu_share.embedded_threads() == (3, "LLMXMR_LOCAL_THREADS=3")
    monkeypatch.setenv(cpu_share.ENV, "all")
    with pytest.raises(ModelSetupError, match="LLMXMR_LOCAL_THREADS='all' is not a number of threads. Fix:"):
        cpu_share.embedded_threads()
