"""The one tolerant parser of model JSON text (production and tests), and a compact schema sketch for prompts.

Small models wrap JSON in fences or prose, leave trailing commas, or answer a bare list where an object
with one list field was asked for. We fix exactly those; anything else is an OutputFault for a re-ask.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from llmxmr.models.errors import OutputFault

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_MAX_CANDIDATES = 8


def _structural(text: str, start: int) -> Iterator[tuple[int, str]]:
    """(index, char) of the brackets and commas of JSON text from `start`, skipping string contents."""
    in_str = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{}[],":
            yield i, ch


def _balanced_span(text: str, start: int) -> str | None:
    """The JSON value opening at text[start] up to its matching bracket, string-aware; None if unclosed."""
    stack: list[str] = []
    for i, ch in _structural(text, start):
        if ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return text[start : i + 1]
    return None


def _strip_trailing_commas(span: str) -> str:
    # Only outside strings: split on string literals and fix the code parts.
    parts = re.split(r'("(?:[^"\\]|\\.)*")', span)
    return "".join(p if i % 2 else _TRAILING_COMMA.sub(r"\1", p) for i, p in enumerate(parts))


def _loads(span: str) -> Any:
    try:
        return json.loads(span)
    except ValueError:
        return json.loads(_strip_trailing_commas(span))


def _candidates(text: str) -> list[Any]:
    """Parsed JSON values found in the text: fenced blocks first, then balanced spans in order."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:  # the common case (providers with response_format): one JSON value and nothing else
            return [json.loads(stripped)]
        except ValueError:
            pass
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    found: list[Any] = []
    for src in sources:
        pos = 0
        while (m := re.compile(r"[{\[]").search(src, pos)) is not None:
            span = _balanced_span(src, m.start())
            pos = m.start() + 1
            if span is None:
                continue
            try:
                found.append(_loads(span))
            except ValueError:
                continue
            pos = m.start() + len(span)  # skip nested values of a parsed one
            if len(found) >= _MAX_CANDIDATES:
                return found
        if found:
            return found
    return found


def _single_list_field(schema: type[BaseModel]) -> str | None:
    list_fields = [
        name for name, f in schema.model_fields.items()
        if typing.get_origin(f.annotation) in (list, tuple) or f.annotation in (list, tuple)
    ]
    required = [name for name, f in schema.model_fields.items() if f.is_required()]
    if len(list_fields) == 1 and set(required) <= set(list_fields):
        return list_fields[0]
    return None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
    return f"{loc}: {err.get('msg', 'invalid')}"


def parse_json_reply(text: str, schema: type[BaseModel]) -> BaseModel:
    """Parse a model's JSON answer into `schema`, tolerating fences, prose, trailing commas, bare lists."""
    if not text or not text.strip():
        raise OutputFault("the reply was empty", kind="empty")
    values = _candidates(text)
    if not values:
        raise OutputFault("the reply contains no complete JSON value (cut off, or not JSON)", kind="invalid_json")
    wrap = _single_list_field(schema)
    first_error: ValidationError | None = None
    fields = set(schema.model_fields)
    for value in values:
        if isinstance(value, list) and wrap:
            value = {wrap: value}
        if isinstance(value, dict) and fields and not fields & set(value):
            # An inner object of a cut-off answer (or an unrelated one) would validate as all-defaults.
            continue
        try:
            return schema.model_validate(value)
        except ValidationError as exc:
            first_error = first_error or exc
    if first_error is None:
        raise OutputFault(f"the JSON has none of the fields of {schema.__name__} (cut off, or another shape)",
                          kind="wrong_shape")
    raise OutputFault(
        f"the JSON does not match {schema.__name__}: {_first_error(first_error)}", kind="wrong_shape"
    )


def _sketch(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return "{...}"  # recursive schema (e.g. section children): same shape again
        return _sketch(defs.get(name, {}), defs, (*seen, name))
    for key in ("anyOf", "oneOf"):
        if key in node:
            return "|".join(_sketch(n, defs, seen) for n in node[key])
    if "enum" in node:
        return "|".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        props = node.get("properties", {})
        if not props:
            extra = node.get("additionalProperties")
            return f"{{str: {_sketch(extra, defs, seen)}}}" if isinstance(extra, dict) else "{}"
        return "{" + ", ".join(f'"{k}": {_sketch(v, defs, seen)}' for k, v in props.items()) + "}"
    if kind == "array":
        inner = _sketch(node.get("items", {}), defs, seen)
        limit = f" (at most {node['maxItems']})" if "maxItems" in node else ""
        return f"[{inner}, ...]{limit}"
    base = {"string": "str", "integer": "int", "number": "number", "boolean": "bool", "null": "null"}.get(
        str(kind), "any"
    )
    if kind == "string" and "maxLength" in node:
        base += f"<={node['maxLength']} chars"
    if kind in ("integer", "number") and ("minimum" in node or "maximum" in node):
        base += f" {node.get('minimum', '')}..{node.get('maximum', '')}"
    return base


def schema_sketch(schema: type[BaseModel]) -> str:
    """One line describing the expected JSON, e.g. {"title": str, "items": [{"id": str}, ...]}."""
    js = schema.model_json_schema()
    return _sketch(js, js.get("$defs", {}), (schema.__name__,))


def salvage_truncated(text: str) -> str | None:
    """JSON cut off at the token limit, closed after its last complete element; None if nothing is left.

    `{"sections": [{"section_id": "s1", "content": "a"}, {"section_id": "s2", "cont` becomes
    `{"sections": [{"section_id": "s1", "content": "a"}]}`: the complete part of a long answer is kept
    instead of paying for the whole answer again.
    """
    start = text.find("{")
    if start < 0:
        return None
    stack: list[str] = []
    cut: tuple[int, list[str]] | None = None  # (end of the last complete element, brackets open there)
    for i, ch in _structural(text, start):
        if ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return text[start : i + 1]  # complete after all: nothing to salvage
            if _boundary(stack):
                cut = (i + 1, list(stack))
        elif stack and _boundary(stack):  # a comma
            cut = (i, list(stack))
    if cut is None:
        return None
    end, open_brackets = cut
    head = text[start:end].rstrip().rstrip(",")
    return head + "".join(reversed(open_brackets))


def _boundary(stack: list[str]) -> bool:
    # Only between array elements or top-level pairs is everything before the cut complete and useful.
    return stack[-1] == "]" or len(stack) == 1
