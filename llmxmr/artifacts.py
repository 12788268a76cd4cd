"""Inspectable artifacts of a run: nodes emit `{"event": "artifact", "name", "text"}` custom stream events
(`Step.artifact` in `llmxmr.nodes.step`) and the CLI writes them to OUTDIR as the run goes: `outline-b<block>.md` for
every block's outline, `outline-reviewed.md` after a structural review edit, and `entropy.json` (the entropy
history so far). A person can follow a long run from another terminal (`watch cat OUT/entropy.json`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def write_artifact(outdir: Path | None, event: dict[str, Any]) -> Path | None:
    """Write one artifact event atomically (a reader never sees half a file); None when it is not writable
    (no output folder, a name that is not a plain file name)."""
    name, text = event.get("name"), event.get("text")
    if outdir is None or not isinstance(name, str) or not NAME_RE.match(name) or not isinstance(text, str):
        return None
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / name
    tmp = outdir / f".{name}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
