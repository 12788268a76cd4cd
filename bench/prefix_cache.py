"""The benchmark mock's prefix cache: which prompt tokens a provider with automatic prompt caching would
serve from its cache, modelled on OpenAI's documented rule.

The rule (OpenAI "Prompt caching", 2024-10; Gemini's implicit caching and vLLM's automatic prefix caching
work alike, with other sizes):

* a request's prompt is its messages in order, each one 4 marker tokens (role and separators) followed by
  its content in tiktoken o200k, the count the mock reports as `prompt_tokens`;
* only an exact prefix counts: the prompt is cut into blocks of 128 tokens, and a block is cached when it
  and every block before it equal those of an earlier request to the same model (block hashes chained,
  as vLLM does);
* nothing is cached below 1,024 tokens: cached tokens = 128 x matched blocks when that is >= 1,024, else 0;
* "earlier" means a request that arrived before this one, within the last `ttl` seconds of the prefix's
  last use (OpenAI keeps a prefix 5-10 minutes after its last use; we take 300 s).

A prefix counts from the moment an earlier request with it arrived. That is optimistic for the first wave
of a fan-out (a real server may prefill the first few requests in parallel before any of them can reuse
the others), and deterministic, so the figures do not depend on the machine's timing.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections.abc import Sequence
from typing import Any

from llmxmr.core.prompt_cache import BLOCK, cacheable

TTL_SECONDS = 300.0
MESSAGE_MARKERS = 4  # tokens per message besides its content, as the mock counts prompt_tokens


def prompt_token_ids(messages: Sequence[dict[str, Any]], encode) -> list[int]:
    """The prompt as one token sequence: per message, 4 markers naming its role, then its content."""
    roles = {"system": -10, "user": -20, "assistant": -30, "tool": -40}
    out: list[int] = []
    for m in messages:
        role = roles.get(str(m.get("role")), -50)
        out += [role, role - 1, role - 2, role - 3][:MESSAGE_MARKERS]
        content = m.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        out += encode(str(content))
    return out


def cached_tokens_for(hits: int) -> int:
    """Cached tokens of a prompt whose first `hits` blocks matched (none below 1,024)."""
    return cacheable(hits * BLOCK)


class PrefixCache:
    """Block-hash prefix cache per model (thread-safe): `lookup_and_add` returns the cached prompt tokens."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._seen: dict[tuple[str, bytes], float] = {}  # (model, chained block hash) -> last use
        self._lock = threading.Lock()

    @staticmethod
    def _chain(tokens: Sequence[int]) -> list[bytes]:
        # Each token as 4 bytes (ids and the role markers fit a signed 32-bit int): one conversion of the
        # prompt, then one hash per whole block (the text form of every id cost ~0.6 ms a request).
        data, size = array("i", tokens).tobytes(), 4 * BLOCK
        hashes, h = [], b""
        for start in range(0, len(data) - size + 1, size):  # whole blocks only
            h = hashlib.sha256(h + data[start:start + size]).digest()
            hashes.append(h)
        return hashes

    def lookup_and_add(self, model: str, tokens: Sequence[int], now: float) -> int:
        chain = self._chain(tokens)
        with self._lock:
            hits = 0
            for h in chain:
                seen = self._seen.get((model, h))
                if seen is None or now - seen > self.ttl:
                    break
                hits += 1
            for h in chain:
                self._seen[(model, h)] = now
        return cached_tokens_for(hits)
