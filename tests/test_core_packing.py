"""Packing of large store records: round trip, small records stay readable, older plain records still read."""

from __future__ import annotations

import json

from llmxmr.core.packing import PACKED, pack, unpack


def test_small_values_are_stored_as_they_are():
    value = {"text": "short", "n": 3}
    assert pack(value) is value
    assert unpack(value) == value


def test_large_values_round_trip_packed_and_smaller():
    value = {"title": "Survey", "sections": [{"section_id": f"s{i}", "title": f"Section {i} on topic {i % 5}",
                                              "construction": "Extract the method and results. " * 8}
                                             for i in range(40)], "note": "ünïcode ✓"}
    packed = pack(value)
    assert list(packed) == [PACKED]
    assert len(json.dumps(packed)) < len(json.dumps(value)) / 3
    assert unpack(packed) == value


def test_threshold_is_on_the_json_size():
    value = {"text": "x" * 100}
    assert pack(value, threshold=50) != value
    assert unpack(pack(value, threshold=50)) == value
    assert pack(value, threshold=1000) is value


def test_a_plain_record_that_happens_to_have_other_keys_is_not_unpacked():
    value = {PACKED: "not base64", "other": 1}
    assert unpack(value) == value
