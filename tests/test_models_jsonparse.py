"""The tolerant JSON parser and the schema sketch."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from llmxmr.models.errors import OutputFault
from llmxmr.models.jsonparse import parse_json_reply, schema_sketch
from llmxmr.state.records import Outline


class Items(BaseModel):
    items: list[str] = Field(max_length=5)


class Verdict(BaseModel):
    score: int = Field(ge=0, le=10)
    rationale: str = ""


@pytest.mark.parametrize(
    "text",
    [
        '{"score": 7, "rationale": "fine"}',
        '```json\n{"score": 7, "rationale": "fine"}\n```',
        'Here is my answer:\n{"score": 7, "rationale": "fine"}\nHope it helps!',
        '{"score": 7, "rationale": "fine",}',
        '```\n{"score": 7,\n "rationale": "fine",\n}\n```',
        'I think [1] matters. {"score": 7, "rationale": "fine"}',
    ],
)
def test_tolerated_forms(text: str) -> None:
    assert parse_json_reply(text, Verdict) == Verdict(score=7, rationale="fine")


def test_comma_inside_string_is_kept() -> None:
    assert parse_json_reply('{"score": 1, "rationale": "a,}"}', Verdict).rationale == "a,}"


def test_bare_list_is_wrapped_for_single_list_field() -> None:
    assert parse_json_reply('Sure: ["a", "b",]', Items).items == ["a", "b"]


def test_bare_list_not_wrapped_for_other_schemas() -> None:
    with pytest.raises(OutputFault) as info:
        parse_json_reply("[1, 2]", Verdict)
    assert info.value.kind == "wrong_shape"


@pytest.mark.parametrize(
    ("text", "kind", "needle"),
    [
        ("", "empty", "empty"),
        ("   \n", "empty", "empty"),
        ("no json at all", "invalid_json", "no complete JSON"),
        ('{"score": 7, "rationale": "cut', "invalid_json", "no complete JSON"),
        ('{"score": 11}', "wrong_shape", "score"),
        ('{"rationale": "x"}', "wrong_shape", "score: Field required"),
    ],
)
def test_faults(text: str, kind: str, needle: str) -> None:
    with pytest.raises(OutputFault) as info:
        parse_json_reply(text, Verdict)
    assert info.value.kind == kind
    assert needle in str(info.value)


def test_schema_sketch_is_one_line_and_handles_recursion() -> None:
    sketch = schema_sketch(Outline)
    assert "\n" not in sketch
    assert '"title": str' in sketch and '"children": [{...}, ...]' in sketch
    assert schema_sketch(Items) == '{"items": [str, ...] (at most 5)}'
    assert '"score": int 0..10' in schema_sketch(Verdict)


def test_salvage_keeps_complete_elements_of_a_cut_off_answer() -> None:
    from llmxmr.models.jsonparse import salvage_truncated

    assert salvage_truncated('{"sections": [{"section_id": "s1", "content": "a, b } ] c"}, {"section_id": "s2", "co') \
        == '{"sections": [{"section_id": "s1", "content": "a, b } ] c"}]}'
    assert salvage_truncated('{\n  "notes": [\n    "one",\n    "two",\n    "thr') == '{\n  "notes": [\n    "one",\n    "two"]}'
    assert salvage_truncated('{"a": 1, "b": {"c": [1, 2, 3') == '{"a": 1, "b": {"c": [1, 2]}}'
    assert salvage_truncated('{"rationale": "long text') is None
    assert salvage_truncated("no json here") is None
    assert salvage_truncated('{"done": true}') == '{"done": true}'
