"""The benchmark mock answers the same usage whether it keeps its prefix-cache accounting or not (with it,
one encoding of the prompt serves both the cache lookup and the count), and bench/cpu_per_call.py's
helpers measure what they say."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu_per_call import bodies_digest, process_cpu_s
from bench.mock import BenchMock
from llmxmr.models.tokens import SLICE_CHARS
from llmxmr.testing.scripted_server import prompt_tokens

SYSTEM = {"role": "system", "content": "Task: judge\nRate the outline. " * 40}


def _request(user: object) -> dict:
    return {"model": "mock", "messages": [SYSTEM, {"role": "user", "content": user}], "max_tokens": 500}


def test_prompt_tokens_are_the_same_with_and_without_the_prefix_cache() -> None:
    with_cache, without = BenchMock(prefix_cache=True), BenchMock(prefix_cache=False)
    long_text = "word and other words, " * (SLICE_CHARS // 20)  # counted slice by slice by count_tokens
    parts = [{"type": "text", "text": "Outline: [s1] Intro"}, {"type": "text", "text": " [s2] Methods"}]
    for user in ("Outline:\n[s1] Intro\n[s2] Methods " * 150, long_text, parts):
        request = _request(user)
        a, b = with_cache._answer(request), without._answer(request)
        assert a["prompt_tokens"] == b["prompt_tokens"] == prompt_tokens(request["messages"])
        assert a["content"] == b["content"] and a["completion_tokens"] == b["completion_tokens"]
        assert b["cached_tokens"] is None
    again = with_cache._answer(_request("Outline:\n[s1] Intro\n[s2] Methods " * 150))
    assert again["cached_tokens"] >= 1024  # the repeated prompt is served from the cache


def test_bodies_digest_ignores_order_and_cpu_is_read_from_proc() -> None:
    a = [{"body_sha": "x"}, {"body_sha": "y"}, {"body_sha": "x"}]
    assert bodies_digest(a) == bodies_digest(a[::-1]) != bodies_digest(a[:2])
    before = process_cpu_s(os.getpid())
    end = time.process_time() + 0.2
    while time.process_time() < end:  # burn 0.2 s of CPU
        pass
    assert process_cpu_s(os.getpid()) - before >= 0.1
