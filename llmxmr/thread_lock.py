"""One process per thread: an exclusive `flock` on a lock file beside the SQLite database, or on PostgreSQL a
session-level advisory lock (llmxmr.postgres.hold_advisory), which works across machines.

The kernel drops a `flock` when its holder exits, however it exits (SIGKILL, a crash, a power cut), so a
stopped run never leaves a stale lock behind. The lock file only records who holds it (pid, host, since) for
the message another process prints; its presence alone means nothing.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from llmxmr.run_store import safe_label


class ThreadBusyError(RuntimeError):
    """Another live process works this thread of this database."""


def lock_path(db_path: Path, thread: str) -> Path:
    # A hash keeps two thread ids that differ only in unsafe characters apart.
    digest = hashlib.sha256(thread.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return db_path.parent / f"{db_path.name}.locks" / f"{safe_label(thread)[:48]}-{digest}.lock"


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process (starting up)"
    return f"process {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('since', '?')}"


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: a planted symlink must not make us truncate some other file.
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def _record_holder(fd: int) -> None:
    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode(), 0)


@contextmanager
def hold_thread(db: Path | str, thread: str, *, wait: bool = False, on_wait=None,
                poll: float = 0.5) -> Iterator[None]:
    """Hold the thread's lock for the block; raise ThreadBusyError (or wait, with `wait`) when it is held.
    `db`: the SQLite file's path, or a postgresql:// URL."""
    from llmxmr.postgres import hold_advisory, is_postgres_url, lock_name

    if is_postgres_url(db):
        def busy(holder: str) -> ThreadBusyError:
            return ThreadBusyError(f"thread {thread} is being worked by {holder} ({lock_name(thread)}). Fix: wait "
                                   "for it to finish, or pass --wait to start when it does")

        with hold_advisory(str(db), thread, busy=busy, wait=wait, on_wait=on_wait, poll=poll):
            yield
        return
    yield from _hold_file(Path(db), thread, wait=wait, on_wait=on_wait, poll=poll)


def _hold_file(db_path: Path, thread: str, *, wait: bool, on_wait, poll: float) -> Iterator[None]:
    path = lock_path(db_path, thread)
    try:
        fd = _open(path)
    except OSError as exc:  # an unwritable folder, or a link planted where the lock file goes
        raise ThreadBusyError(f"cannot open the lock of thread {thread} at {path}: {exc.strerror or exc}. Fix: "
                              f"make {path.parent} a writable folder of yours (no symbolic link in it)") from None
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                holder = _holder(fd)
                if not wait:
                    raise ThreadBusyError(
                        f"thread {thread} is being worked by {holder} (lock {path}). Fix: wait for it to "
                        "finish, or pass --wait to start when it does") from None
                if on_wait is not None and not told:
                    on_wait(f"thread {thread} is being worked by {holder}; waiting for it (--wait)")
                    told = True
                time.sleep(poll)
        _record_holder(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # the holder's record goes with its lock
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_SETUP = threading.Lock()


@contextmanager
def setup_lock(db_path: Path) -> Iterator[None]:
    """Create-or-migrate the SQLite tables one at a time: LangGraph's migrations are not safe to run twice at
    once, and several surveys (threads of this process, or other processes) may open a new database together."""
    with _SETUP:
        fd = _open(db_path.parent / f"{db_path.name}.locks" / "setup.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock
