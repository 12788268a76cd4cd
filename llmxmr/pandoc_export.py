"""Optional: the article as DOCX and HTML with formatted citations and References, through pandoc's citeproc.

Needs the `export` extra (`pip install 'llmxmr[export]'`: the pypandoc-binary wheel ships a pandoc
binary). Without it nothing here runs; survey.pandoc.md and references.bib are there for the user's own
pandoc either way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from llmxmr.artifacts import FILE_MODE
from llmxmr.references import BIB_NAME, PANDOC_NAME

FORMATS = ("docx", "html")


def pandoc_binary() -> str | None:
    """The pandoc that pypandoc finds (its bundled one first), or None when there is none."""
    try:
        import pypandoc

        return pypandoc.get_pandoc_path()
    except (ImportError, OSError):
        return None


def render_documents(outdir: str | Path, title: str, formats: tuple[str, ...] = FORMATS,
                     csl: str | Path | None = None) -> list[Path]:
    """survey.pandoc.md -> survey.docx / survey.html beside it (citeproc; `csl` picks a citation style).

    Returns the paths written; raises RuntimeError when pandoc is missing or fails.
    """
    import pypandoc

    out = Path(outdir)
    args = ["--citeproc", f"--bibliography={out / BIB_NAME}", "--standalone", f"--metadata=pagetitle:{title}"]
    if csl:
        args.append(f"--csl={csl}")
    written = []
    for fmt in formats:
        target = out / f"survey.{fmt}"
        # Written beside the target and renamed, as the other outputs are: never a half-written file.
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{target.name}.", suffix=".tmp")
        os.fchmod(fd, FILE_MODE)  # the mode of every other output, not mkstemp's 0600
        os.close(fd)
        try:
            pypandoc.convert_file(str(out / PANDOC_NAME), fmt, format="markdown", outputfile=tmp, extra_args=args)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        written.append(target)
    return written
