"""Inspectable artifacts of a run: nodes emit `{"event": "artifact", "name", "text"}` custom stream events
(`Step.artifact` in `llmxmr.nodes.step`) and the CLI writes them to OUTDIR as the run goes: `outline-b<block>.md` for
every block's outline, `outline-reviewed.md` after a structural review edit, and `entropy.json` (the entropy
history so far). A person can follow a long run from another terminal (`watch cat OUT/entropy.json`)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
# Read once, at import (os.umask can only be read by setting it): every output gets the mode a plain
# open() would give it, survey.md and an outline alike.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so that no reader sees half a file and no planted link is followed: a fresh
    temp file (O_EXCL, unpredictable name) in the target folder, renamed over the target (rename replaces a
    link, it never writes through one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_artifact(outdir: Path | None, event: dict[str, Any]) -> Path | None:
    """Write one artifact event atomically (a reader never sees half a file); None when it is not writable
    (no output folder, a name that is not a plain file name)."""
    name, text = event.get("name"), event.get("text")
    if outdir is None or not isinstance(name, str) or not NAME_RE.match(name) or not isinstance(text, str):
        return None
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / name
    atomic_write(path, text)
    return path
