"""Compact encoding of large store records (candidate outlines, the response record).

The store keeps JSON. A run writes hundreds of candidate outlines (~30 KB of JSON each at S = 38) and a
response record per call; as plain JSON they made the run's database ~8x the corpus at 1 M tokens. A value
whose JSON is larger than `threshold` bytes is stored as {PACKED: base64(zlib(json))}; smaller values stay
readable as they are. `unpack` accepts both, so records written before packing still read.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

PACKED = "zlib+base64:json"
THRESHOLD = 2048


def pack(value: dict[str, Any], threshold: int = THRESHOLD) -> dict[str, Any]:
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(raw) <= threshold:
        return value
    return {PACKED: base64.b64encode(zlib.compress(raw, 6)).decode("ascii")}


def unpack(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) == 1 and PACKED in value:
        return json.loads(zlib.decompress(base64.b64decode(value[PACKED])).decode("utf-8"))
    return value
