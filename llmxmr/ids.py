"""Paper ids: a short ASCII slug of the title plus a short content hash.

The id is what models cite as `[@paper-id]`, so it is restricted to `[a-z0-9-]` (no brackets, spaces,
semicolons or commas that would make a marker ambiguous) and kept short to spare prompt tokens.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

PAPER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")

_MAX_WORDS = 5
_MAX_CHARS = 40
_HASH_HEX = 6
_FALLBACK = "doc"  # for titles with no ASCII letters or digits at all (Chinese, emoji, empty)
# Latin letters that NFKD does not decompose into ASCII.
_EXTRA = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
                        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th", "ı": "i"})


def slugify(title: str, *, max_words: int = _MAX_WORDS, max_chars: int = _MAX_CHARS) -> str:
    """ASCII slug of `title`: NFKD-transliterated, lowercase, hyphen-joined, at most a few words."""
    ascii_text = unicodedata.normalize("NFKD", title.translate(_EXTRA)).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())[:max_words]
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_chars:
            if not slug:  # a single very long word: cut it rather than return nothing
                slug = word[:max_chars]
            break
        slug = candidate
    return slug or _FALLBACK


_HASH_SLICE = 1 << 20  # characters hashed at a time: a 200 MB text is never copied whole to be hashed


def content_hash(title: str, text: str, length: int = _HASH_HEX) -> str:
    """sha256 of "title\0text" (UTF-8), fed slice by slice."""
    digest = hashlib.sha256(f"{title}\0".encode("utf-8", "surrogatepass"))
    for start in range(0, len(text), _HASH_SLICE):
        digest.update(text[start:start + _HASH_SLICE].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:length]


def make_paper_id(title: str, text: str) -> str:
    """Stable, short id: same title and text always give the same id; different text gives another id."""
    return f"{slugify(title)}-{content_hash(title, text)}"
