"""The local environment of a run (its output folder, its database file, the disk) checked up front, and
its failures mid-run turned into one line naming the problem and the fix instead of a traceback."""

from __future__ import annotations

import errno
import sqlite3
import tempfile
from pathlib import Path


class EnvironmentProblem(RuntimeError):
    """A folder, the run database or the disk cannot be used; the message says what to do."""


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path("/")


def check_writable_folder(folder: Path, what: str, fix: str) -> None:
    """Create `folder` if needed and prove a file can be written in it; raise EnvironmentProblem otherwise.
    `what` names it for the user ("-o /x/out", "the folder of --db /x/runs.sqlite")."""
    existing = _existing_ancestor(folder)
    if existing.exists() and not existing.is_dir():
        where = "is an existing file" if existing == folder else f"lies under {existing}, which is a file"
        raise EnvironmentProblem(f"{what} {where}, not a folder. Fix: {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write to {what}: {exc.strerror or exc}. Fix: {fix}") from None


def check_output_folder(out: Path) -> None:
    check_writable_folder(out, f"the output folder -o {out}", "pass -o a folder you can write to, e.g. -o ./out")


def check_database_path(db: Path | str) -> None:
    if not isinstance(db, Path):  # a postgresql:// URL: checked when it is opened (llmxmr.postgres)
        return
    if db.is_dir():
        raise EnvironmentProblem(f"--db {db} is a folder, not a file. Fix: pass --db a file path, e.g. "
                                 f"--db {db / 'runs.sqlite'}")
    check_writable_folder(db.parent, f"the folder of --db {db}", "pass --db a file in a folder you can write to")
    if db.exists():
        try:
            with db.open("r+b"):
                pass
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write to the run database {db}: {exc.strerror or exc}. Fix: pass "
                                     "--db a file you can write to") from None


def storage_problem(exc: BaseException, db: Path) -> EnvironmentProblem | None:
    """The one-line message for a database or disk error (None: not one of ours to explain)."""
    # SQLite rolls a transaction back when the disk fills up, so the error that surfaces may be a later
    # one ("cannot commit - no transaction is active"): look at what it was raised during, too.
    chain = [exc]
    while len(chain) < 6 and (chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    if any("disk is full" in str(e).lower() or getattr(e, "errno", None) == errno.ENOSPC for e in chain):
        return EnvironmentProblem(f"the disk is full (writing {db} or the output files). Fix: free some space, "
                                  "then run the same command again: it resumes where it stopped")
    text = str(exc).lower()
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    if "not a database" in text or "malformed" in text:
        return EnvironmentProblem(f"{db} is not an llmxmr run database ({exc}). Fix: pass --db a new file, or "
                                  "move that file away")
    if "locked" in text or "busy" in text:
        return EnvironmentProblem(f"the run database {db} is locked by another process. Fix: wait for that "
                                  "process to finish, or pass another --db")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return EnvironmentProblem(f"cannot write to the run database {db} ({exc}). Fix: pass --db a file in a "
                                  "folder you can write to")
    return EnvironmentProblem(f"the run database {db} failed: {exc}. Fix: check the disk, or pass another --db")
