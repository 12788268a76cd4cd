"""Every setting, given a value of the wrong type through `--set`, stops `llmxmr run` with exit 2 and one
line naming the setting and a fix: never a traceback or pydantic's multi-line report (issue 15)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from llmxmr import cli
from llmxmr.state.context import Context

# Values of the wrong type for a field, by what the field holds. Settings are checked before the corpus is
# read: a value that slipped through would end with "corpus not found" instead, and the test would say so.
_NOT_NUMBER = ["abc", "[1]", '{"a": 1}', "true", "NaN", "Infinity", '""']
_NOT_WHOLE = ["1.5", *_NOT_NUMBER]
_NOT_TEXT = ["123", "[1]", '{"a": 1}', "true", "1.5"]
_NOT_BOOL = ["abc", "2", "[1]", '{"a": 1}', "1.5"]
_NOT_CHOICE = ["abc", "123", "[1]", "true"]


def _wrong_values(field) -> list[str]:
    kind = str(field.type)
    if "Literal" in kind or field.name == "mode":
        return _NOT_CHOICE
    if "bool" in kind:
        return _NOT_BOOL
    if "int" in kind:
        return _NOT_WHOLE
    if "float" in kind:
        return _NOT_NUMBER
    return _NOT_TEXT


CASES = [(f.name, value) for f in fields(Context) for value in _wrong_values(f)]


def test_every_setting_is_fuzzed() -> None:
    assert {name for name, _ in CASES} == {f.name for f in fields(Context)}


@pytest.mark.parametrize(("name", "value"), CASES)
def test_wrong_type_is_one_line_with_a_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                           value: str) -> None:
    code = cli.main(["run", str(tmp_path / "no-such-corpus"), "-o", str(tmp_path / "out"), "--set", f"{name}={value}"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "validation error" not in err
    assert name in err and "Fix:" in err, err
    assert not (tmp_path / "out").exists()  # nothing was started
