"""What a person sees while a run goes (issue 15): a connection error names the endpoint; without a
terminal, a line per finished step with totals known up front and a heartbeat while calls are in flight;
retries logged as they happen except with -q; the summary is the last thing printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langgraph.store.memory import InMemoryStore

from llmxmr import cli, console
from llmxmr.models import caller as caller_mod
from llmxmr.models.caller import ModelCaller, UsageMeter
from llmxmr.models.errors import ProviderError
from llmxmr.state.context import resolve_settings
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1"]
DEAD = "http://127.0.0.1:9/v1"  # nothing listens on port 9 (discard) here

pytestmark = pytest.mark.usefixtures("offline_env")


def test_unreachable_base_url_is_named_before_any_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", str(CORPUS), "-o", str(tmp_path / "out"), "--model", "openai:m", "--base-url", DEAD, *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"error: cannot reach {DEAD}: connection refused; is the server running, is `--base-url` right?")
    assert "lower max_concurrency" not in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_server_gone_mid_run_is_named_not_blamed_on_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caller_mod, "_sleep", lambda s: None)
    caller = ModelCaller(resolve_settings({"model": "openai:m", "base_url": DEAD}), InMemoryStore())
    with pytest.raises(ProviderError) as info:
        caller.call(role="reader", stage="map", unit="u", messages=[HumanMessage("hi")], meter=UsageMeter(),
                    max_tokens=10)
    assert str(info.value).startswith(f"cannot reach {DEAD}: connection refused; is the server running, "
                                      "is `--base-url` right?")
    assert "max_concurrency" not in str(info.value) and ".." not in str(info.value)


def test_timeouts_that_remain_say_which_setting_and_how_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caller_mod, "_sleep", lambda s: None)
    monkeypatch.setattr(caller_mod, "MAX_ATTEMPTS", 2)
    with scripted_server(work=0.6, slots=1) as server:  # every request is slower than the time-out
        caller = ModelCaller(resolve_settings({"model": "openai:m", "base_url": server.base_url,
                                               "request_timeout": 0.2}), InMemoryStore())
        with pytest.raises(ProviderError) as info:
            caller.call(role="reader", stage="map", unit="u", messages=[HumanMessage("hi")], meter=UsageMeter(),
                        max_tokens=10)
    text = str(info.value)
    assert "2 of 2 attempts ran out of request_timeout=0.2 s" in text
    assert "Fix: --set request_timeout=60 or more" in text and "--set max_concurrency=1" in text


def _lines_run(tmp_path: Path, *extra: str, work: float = 0.0) -> int:
    with scripted_server(work=work, slots=2 if work else None) as server:
        return cli.main(["run", str(CORPUS), "-o", str(tmp_path / "out"), "--model", "openai:scripted",
                         "--base-url", server.base_url, *TINY, *extra])


def test_without_a_terminal_each_step_is_a_line_with_its_total(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _lines_run(tmp_path)
    err = capsys.readouterr().err
    assert code == 0, err
    steps = re.findall(r"^\[\d+:\d\d:\d\d\] (\w+) (\d+)(/\d+)? done, \d+ in flight", err, re.M)
    stages = {s for s, _, _ in steps}
    assert {"prepare", "map", "digest", "write"} <= stages
    assert all(total for s, _, total in steps if s in ("map", "digest", "write", "skeleton"))  # never N/?
    assert ("map", "4", "/4") in steps  # the plan knew there are four chunks
    assert err.rstrip().splitlines()[-1].startswith("in flight: openai:scripted settled at")  # summary last


def test_a_heartbeat_while_calls_are_in_flight(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "HEARTBEAT_SECONDS", 0.1)
    code = _lines_run(tmp_path, work=0.3)
    err = capsys.readouterr().err
    assert code == 0, err
    assert re.search(r"^\[\d+:\d\d:\d\d\] working: \w+ \d+(/\d+)? done, \d+ model call\(s\) in flight$", err, re.M)


def test_quiet_prints_no_progress_and_no_retries(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caller_mod, "_sleep", lambda s: None)
    busy = {"status": 503, "body": {"error": {"message": "busy"}}}
    served: list[str] = []

    def once(stage: str, request: dict) -> dict | None:
        if stage == "map" and "map" not in served:
            served.append("map")
            return busy
        return None

    for quiet in (False, True):
        with scripted_server(fault=once) as server:
            served.clear()
            code = cli.main(["run", str(CORPUS), "-o", str(tmp_path / f"out{quiet}"), "--model", "openai:scripted",
                             "--base-url", server.base_url, *TINY, *(["-q"] if quiet else [])])
        err = capsys.readouterr().err
        assert code == 0, err
        retry = r"^model openai:scripted \(role reader, stage map\): server error: .*busy.* \(attempt 1 of 5\); retrying in"
        assert bool(re.search(retry, err, re.M)) is not quiet
        assert (" done, " in err) is not quiet


def _terminal_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, stop_live_first: bool = True) -> str:
    """What a terminal shows for a whole run: the CLI's rich console made a terminal writing to a buffer, its
    bars redrawn every 10 ms so that a redraw after the summary, if the bars still ran, would be caught."""
    import io

    import rich.console
    import rich.progress

    screen = io.StringIO()
    real_console, real_progress = rich.console.Console, rich.progress.Progress

    def terminal_console(*args, **kwargs):
        kwargs.pop("stderr", None)
        return real_console(*args, file=screen, force_terminal=True, width=120, color_system=None, **kwargs)

    def progress(*args, **kwargs):
        return real_progress(*args, refresh_per_second=100, **kwargs)

    monkeypatch.setattr(rich.console, "Console", terminal_console)
    monkeypatch.setattr(rich.progress, "Progress", progress)
    if not stop_live_first:  # the wrong order: bars stopped only when the console closes, after the summary
        monkeypatch.setattr(cli.Console, "stop_live", lambda self: None)
    with scripted_server() as server:
        assert cli.main(["run", str(CORPUS), "-o", str(tmp_path / "out"), "--model", "openai:scripted",
                         "--base-url", server.base_url, *TINY]) == 0
    return screen.getvalue()


def _redrawn_after_summary(screen: str) -> bool:
    # A live display redraws by moving the cursor up and erasing lines (ESC [ ... A / ESC [ 2K), or shows a bar.
    after = screen[screen.rindex("stop reason:"):]
    return bool(re.search(r"\x1b\[\d*A|\x1b\[2K|━", after))


def test_the_live_bars_never_redraw_below_the_final_summary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    screen = _terminal_output(monkeypatch, tmp_path)
    assert "━" in screen[:screen.index("stop reason:")]  # the bars were shown while the run went
    assert "stop reason:" in screen and "wrote " in screen
    assert not _redrawn_after_summary(screen), repr(screen[screen.rindex("stop reason:"):][:500])


def test_the_redraw_check_sees_bars_stopped_after_the_summary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The check above can fail: with the bars stopped after the summary is printed, they redraw below it.
    assert _redrawn_after_summary(_terminal_output(monkeypatch, tmp_path, stop_live_first=False))
