"""Provider prompt caching (pure): how much of a prompt prefix shared with earlier requests a provider bills
as cached, and what a run costs when cached prompt tokens are cheaper.

The rule is OpenAI's (prompt caching, documented 2024-10): prefixes of at least 1,024 tokens are cached,
matched in steps of 128 tokens. Gemini's implicit caching and vLLM/SGLang prefix caching reuse prefixes
alike with other sizes; the planner and the benchmark mock (bench/prefix_cache.py) use this one rule.
"""

from __future__ import annotations

BLOCK = 128  # a prefix is matched in steps of this many tokens
MIN_CACHED = 1024  # nothing is cached below this
BATCH_PRICE = 0.5  # the Batch API's price as a share of the ordinary one (OpenAI and Gemini: half)


def cacheable(shared_tokens: int) -> int:
    """Tokens of a shared prefix of `shared_tokens` that the provider serves from its cache."""
    n = (max(0, shared_tokens) // BLOCK) * BLOCK
    return n if n >= MIN_CACHED else 0


def cost(prompt_tokens: int, completion_tokens: int, *, price_in: float, price_out: float,
         cached_tokens: int = 0, price_cached: float | None = None) -> float:
    """Money at prices per million tokens; cached prompt tokens at `price_cached` (None: at `price_in`)."""
    cached = min(max(0, cached_tokens), prompt_tokens)
    cached_price = price_in if price_cached is None else price_cached
    return ((prompt_tokens - cached) * price_in + cached * cached_price + completion_tokens * price_out) / 1e6
