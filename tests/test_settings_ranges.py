"""Every setting has a valid range, checked before any paid call, with a one-line message and exit 2
(issue 16 §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmxmr import cli, run_store
from llmxmr.state.context import (
    SettingsError,
    apply_overrides,
    redact_url,
    resolve_settings,
)
from llmxmr.testing.scripted_server import scripted_server

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "mini.jsonl"
TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


pytestmark = pytest.mark.usefixtures("offline_env")


@pytest.mark.parametrize(("flags", "words"), [
    (["--set", "request_timeout=-1"], "request_timeout must be"),
    (["--set", "max_output_tokens=-5"], "max_output_tokens must be at least 1"),
    (["--set", "context_window=-3"], "context_window must be at least 1"),
    (["--set", "max_concurrency=abc"], "max_concurrency must be a whole number"),
    (["--set", "temperature=9"], "temperature must be within [0, 2]"),
    (["--base-url", "notaurl"], "base_url 'notaurl' is not an http:// or https:// URL"),
    (["--base-url", "ftp://x"], "base_url 'ftp://x' is not an http:// or https:// URL"),
    (["--base-url", "http://localhost:99999/v1"], "has an invalid port (1-65535)"),
])
def test_bad_values_stop_before_any_call(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
                                         words: str) -> None:
    with scripted_server() as stub:
        args = ["run", str(CORPUS), "-o", str(tmp_path), "--model", "openai:scripted", *TINY]
        if "--base-url" not in flags:
            args += ["--base-url", stub.base_url]
        assert cli.main([*args, *flags]) == 2
        assert stub.chat_requests == []
    err = capsys.readouterr().err.strip()
    assert words in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_bad_override_on_resume_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with scripted_server() as stub:
        assert cli.main(["run", str(CORPUS), "-o", str(out), "--thread", "t", "--model", "openai:scripted",
                         "--base-url", stub.base_url, *TINY]) == 0
    capsys.readouterr()
    code = cli.main(["resume", "t", "--db", str(out / "runs.sqlite"), "-o", str(out), "--set", "max_calls=-1"])
    assert code == 2
    assert "max_calls must be at least 1" in capsys.readouterr().err


def test_ranges_apply_to_overrides_and_pydantic_errors_are_one_line() -> None:
    settings = resolve_settings({})
    with pytest.raises(SettingsError, match="request_timeout"):
        apply_overrides(settings, {"request_timeout": 0})
    with pytest.raises(SettingsError) as err:
        resolve_settings({"charts": "sometimes"})
    assert "\n" not in str(err.value) and "charts" in str(err.value)


def test_credentials_in_a_base_url_are_redacted() -> None:
    assert redact_url("http://user:s3cret@host:8000/v1") == "http://user:***@host:8000/v1"
    assert redact_url("http://host/v1") == "http://host/v1"
    with pytest.raises(SettingsError) as err:
        resolve_settings({"base_url": "ftp://user:s3cret@host"})
    assert "s3cret" not in str(err.value)


def test_survey_json_does_not_store_a_base_url_password(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with scripted_server() as stub:
        url = stub.base_url.replace("http://", "http://user:s3cret@")
        assert cli.main(["run", str(CORPUS), "-o", str(out), "--model", "openai:scripted", "--base-url", url,
                         *TINY]) == 0
    text = (out / "survey.json").read_text()
    assert "s3cret" not in text and "user:***@" in text


def test_the_database_never_stores_a_base_url_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    gone = {"status": 404, "body": {"error": {"message": "model not found"}}}
    with scripted_server(fault=lambda stage, req: gone if stage == "feedback" else None) as broken:
        url = broken.base_url.replace("http://", "http://user:s3cret@")
        assert cli.main(["run", str(CORPUS), "-o", str(out), "--thread", "t", "--model", "openai:scripted",
                         "--base-url", url, *TINY]) == 1  # stopped at feedback, resumable
    assert "s3cret" not in capsys.readouterr().err
    for f in (p for p in out.glob("runs.sqlite*") if p.is_file()):
        assert b"s3cret" not in f.read_bytes(), f
    db = str(out / "runs.sqlite")
    run_store._BASE_URL_SECRETS.clear()  # as in a new process: the password lived only in the first one
    assert cli.main(["resume", "t", "--db", db, "-o", str(out)]) == 2
    assert "had a password, which is not stored. Fix: pass --base-url" in capsys.readouterr().err
    with scripted_server() as healthy:
        url = healthy.base_url.replace("http://", "http://user:s3cret@")
        assert cli.main(["resume", "t", "--db", db, "-o", str(out), "-q", "--base-url", url]) == 0
    for f in (p for p in out.glob("runs.sqlite*") if p.is_file()):
        assert b"s3cret" not in f.read_bytes(), f
