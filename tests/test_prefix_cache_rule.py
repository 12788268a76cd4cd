"""The benchmark mock's prefix-cache rule (bench/prefix_cache.py), modelled on OpenAI's: exact prefixes of
128-token blocks seen in an earlier request to the same model within the TTL, nothing below 1,024."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.prefix_cache import PrefixCache, prompt_token_ids  # noqa: E402


def test_only_whole_shared_blocks_from_1024_tokens_count() -> None:
    cache = PrefixCache()
    base = list(range(3000))
    assert cache.lookup_and_add("m", base, 0.0) == 0  # the first request pays in full
    assert cache.lookup_and_add("m", base[:2000] + [-1] * 1000, 1.0) == 1920  # 15 whole blocks of the 2,000 shared
    assert cache.lookup_and_add("m", base[:1000] + [-1] * 2000, 2.0) == 0  # 7 blocks: below 1,024
    assert cache.lookup_and_add("m", [-5] + base[1:], 3.0) == 0  # differs in its first token: no prefix
    assert cache.lookup_and_add("other", base, 4.0) == 0  # another model has its own cache


def test_a_prefix_expires_after_the_ttl_since_its_last_use() -> None:
    cache = PrefixCache(ttl=300)
    tokens = list(range(2048))
    cache.lookup_and_add("m", tokens, 0.0)
    assert cache.lookup_and_add("m", tokens, 299.0) == 2048  # used again: kept alive
    assert cache.lookup_and_add("m", tokens, 598.0) == 2048
    assert cache.lookup_and_add("m", tokens, 999.0) == 0  # idle for 401 s


def test_prompt_tokens_are_counted_as_the_mock_reports_them() -> None:
    ids = prompt_token_ids([{"role": "system", "content": "ab"}, {"role": "user", "content": "c"}],
                           lambda text: [ord(ch) for ch in text])
    assert len(ids) == 4 + 2 + 4 + 1  # 4 markers per message, then its content
    assert ids[4:6] == [97, 98] and ids[:4] != ids[6:10]  # the role is part of the prefix
