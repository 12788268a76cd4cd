"""What a served graph (`langgraph dev`, LangGraph Platform) lets its clients choose: a client sets
`base_url` and `corpus_path`, but the API key and the files are the server's (docs/DEPLOY.md).

- The API key from the environment goes only to the base URL it was configured with (`OPENAI_BASE_URL`, else
  the provider's own endpoint) or to one the operator allows in `LLMXMR_ALLOWED_BASE_URLS`. With an
  allow-list, any other base URL is refused; without one, a served run sends no key to a base URL of the
  client's.
- With `LLMXMR_CORPUS_ROOT`, `corpus_path` must lie inside that folder (links resolved), and a folder corpus
  never follows links out of it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ALLOWED_BASE_URLS_ENV = "LLMXMR_ALLOWED_BASE_URLS"
CORPUS_ROOT_ENV = "LLMXMR_CORPUS_ROOT"
SERVED_ENV = "LLMXMR_SERVED"


class NotAllowedError(ValueError):
    """A client asked for something the server's operator has not allowed."""


def served() -> bool:
    """Running inside a LangGraph API server (or told so by the operator)."""
    return "langgraph_api" in sys.modules or os.environ.get(SERVED_ENV, "").lower() in ("1", "true", "yes")


def _norm(url: str) -> str:
    return url.strip().rstrip("/").lower()


def allowed_base_urls() -> list[str]:
    raw = os.environ.get(ALLOWED_BASE_URLS_ENV, "")
    return [_norm(u) for u in raw.replace(",", " ").split() if u.strip()]


def key_for_base_url(base_url: str | None, key: str | None) -> str | None:
    """The API key to send to `base_url` (None: send none); raises NotAllowedError for a base URL outside
    the operator's allow-list."""
    if not base_url:
        return key  # the provider's own endpoint, or OPENAI_BASE_URL: what the key was configured for
    allowed = allowed_base_urls()
    configured = os.environ.get("OPENAI_BASE_URL")
    if configured and _norm(configured) == _norm(base_url):
        return key
    if allowed:
        if _norm(base_url) not in allowed:
            from llmxmr.state.context import redact_url

            raise NotAllowedError(
                f"base_url {redact_url(base_url)!r} is not allowed here. Fix: use one of {', '.join(allowed)}, "
                f"or ask the operator to add it to {ALLOWED_BASE_URLS_ENV}")
        return key
    return None if served() else key  # served without an allow-list: the server's key stays home


def corpus_root() -> Path | None:
    raw = os.environ.get(CORPUS_ROOT_ENV)
    return Path(raw).expanduser().resolve() if raw else None


def confine_corpus(path: Path) -> Path:
    """`path` resolved, when it lies inside the configured corpus root (or no root is configured)."""
    root = corpus_root()
    if root is None:
        return path
    real = path.expanduser().resolve()
    if not real.is_relative_to(root):
        # The root itself is not named: a client learns nothing about the server's folders.
        raise NotAllowedError(f"corpus_path {str(path)!r} is outside this server's corpus root. Fix: give a "
                              f"path inside the folder the operator set in {CORPUS_ROOT_ENV}")
    return real
