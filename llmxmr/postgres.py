"""PostgreSQL for runs that outgrow one machine (the `postgres` extra): the maintained LangGraph checkpointer
and store (`langgraph-checkpoint-postgres`) on a psycopg connection pool, sync and async, and the thread lock
as a session-level advisory lock, which the server drops when the holder's connection dies (SIGKILL, a crash,
a lost machine), so a stopped worker never leaves a stale lock behind.

Every failure to reach or use the database becomes a `DatabaseError` with a one-line message that names the
problem and the fix; the password of the URL is never shown.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT = 10  # seconds: a wrong host fails fast instead of hanging the command
POOL_SIZE = 16  # connections per process and database: every survey's worker threads share them
# How long a step waits for a connection: a server that restarts within it does not stop the run.
POOL_TIMEOUT = 60.0
EXTRA_HINT = "pip install 'llmxmr[postgres]'"


class DatabaseError(RuntimeError):
    """The database cannot be reached or used; the message says why and what to do."""


def is_postgres_url(target: Any) -> bool:
    return isinstance(target, str) and target.startswith(SCHEMES)


def redact(url: str) -> str:
    """The URL without its password (postgresql://user:***@host/db)."""
    return re.sub(r"(//[^/:@]*):[^@/]*@", r"\1:***@", url)


def require_extra() -> None:
    try:
        import langgraph.checkpoint.postgres
        import langgraph.store.postgres  # noqa: F401
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise DatabaseError(f"a postgresql:// database needs the postgres extra ({exc.name} is missing). "
                            f"Fix: {EXTRA_HINT}") from None


def _parts(url: str) -> dict[str, str]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except psycopg.Error as exc:  # ProgrammingError: a malformed URL
        why = _first_line(exc).replace(url, redact(url))
        raise DatabaseError(f"--db {redact(url)} is not a valid PostgreSQL URL ({why}). "
                            "Fix: use postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE") from None
    return {k: str(v) for k, v in info.items()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def explain(exc: BaseException, url: str) -> DatabaseError:
    """One line for a psycopg error: what went wrong with which server, and the fix."""
    info = _parts(url)
    where = f"{info.get('host', 'localhost')}:{info.get('port', '5432')}"
    user, dbname = info.get("user", os.environ.get("PGUSER", "?")), info.get("dbname", "?")
    text = str(exc)
    low = text.lower()
    shown = redact(url)
    if "connection refused" in low or "no such file or directory" in low and "socket" in low:
        msg = f"cannot connect to PostgreSQL at {where}: connection refused. Fix: start the server or correct host/port in --db {shown}"
    elif "could not translate host name" in low or "name or service not known" in low:
        msg = f"cannot connect to PostgreSQL: unknown host in --db {shown}. Fix: correct the host name"
    elif "timeout expired" in low or "timed out" in low:
        msg = f"cannot connect to PostgreSQL at {where}: no answer within {CONNECT_TIMEOUT} s. Fix: check the host, port and firewall"
    elif "password authentication failed" in low or "no password supplied" in low or "no pg_hba.conf entry" in low:
        msg = f"PostgreSQL at {where} refused user {user}: {_first_line(exc)}. Fix: correct the user and password in --db"
    elif "does not exist" in low and "database" in low:
        msg = f"PostgreSQL at {where} has no database {dbname}. Fix: createdb {dbname} (or name an existing one in --db)"
    elif "permission denied" in low or "must be owner" in low:
        msg = (f"user {user} may not create or use llmxmr's tables in database {dbname} at {where} ({_first_line(exc)}). "
               f"Fix: GRANT CREATE, USAGE ON SCHEMA public TO {user} (or use the database's owner)")
    elif "invalid" in low and ("dsn" in low or "connection option" in low or "uri" in low):
        msg = (f"--db {shown} is not a valid PostgreSQL URL ({_first_line(exc)}). "
               "Fix: use postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
    else:
        msg = f"PostgreSQL at {where} failed: {_first_line(exc)}. Fix: check the server and --db {shown}"
    return DatabaseError(msg.replace(url, shown))


def _connect_kwargs() -> dict[str, Any]:
    from psycopg.rows import dict_row

    # What the LangGraph PostgreSQL saver and store require of their connections.
    return {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}


def probe(url: str, *, application: str = "llmxmr") -> Any:
    """A first connection made by hand, so that a refused connection or a wrong password is reported as
    itself (a pool would only say it timed out)."""
    require_extra()
    import psycopg

    _parts(url)
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, application_name=application[:63],
                               **_connect_kwargs())
    except psycopg.Error as exc:
        raise explain(exc, url) from None


_SET_UP: set[str] = set()
_SET_UP_LOCK = threading.Lock()
SETUP_LOCK_KEY = int.from_bytes(hashlib.sha256(b"llmxmr-setup").digest()[:8], "big", signed=True)


def _setup(url: str) -> None:
    """Create or migrate the tables once. Several surveys, workers or machines may start on a new database at
    the same moment and the migrations are not safe to run twice at once: one at a time, under a
    transaction-less advisory lock that the server drops with the connection."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.store.postgres import PostgresStore

    with _SET_UP_LOCK:
        if url in _SET_UP:
            return
        with probe(url) as conn:
            try:
                _wait_for_setup_lock(conn, url)
                PostgresSaver(conn).setup()
                PostgresStore(conn).setup()
            except psycopg.Error as exc:
                raise explain(exc, url) from None
        _SET_UP.add(url)


SETUP_WAIT = 600.0  # seconds another process may spend migrating before we give up


def _wait_for_setup_lock(conn: Any, url: str, *, poll: float = 0.1) -> None:
    """Take the setup lock by polling, never by a blocking `pg_advisory_lock`: the store's migrations run
    `CREATE INDEX CONCURRENTLY`, which waits for every open transaction to end, and a statement blocked on
    the lock is such a transaction, so the holder and the waiter would deadlock (seen with two workers
    starting on one new database). Between polls this connection has no transaction open."""
    deadline = time.monotonic() + SETUP_WAIT
    while not conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (SETUP_LOCK_KEY,)).fetchone()["got"]:
        if time.monotonic() > deadline:
            raise DatabaseError(f"another process has been creating llmxmr's tables in {redact(url)} for "
                                f"{SETUP_WAIT:.0f} s. Fix: check that process (pg_stat_activity), then retry")
        time.sleep(poll)


@contextmanager
def open_postgres(url: str, *, pool_size: int = POOL_SIZE) -> Iterator[tuple[Any, Any]]:
    """(PostgresSaver, PostgresStore) sharing one connection pool; a broken connection (the server restarted)
    is checked on checkout and replaced, so a run can go on once the server is back."""
    require_extra()
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.store.postgres import PostgresStore

    _setup(url)
    with _shared_pool(url, pool_size) as pool:
        yield PostgresSaver(pool), PostgresStore(pool)


# One pool per database in a process, shared by the surveys it works at once (--parallel-surveys K would
# otherwise open K pools and could pass the server's max_connections).
_POOLS: dict[str, list[Any]] = {}  # url -> [pool, users]
_POOLS_LOCK = threading.Lock()


@contextmanager
def _shared_pool(url: str, pool_size: int) -> Iterator[Any]:
    from psycopg_pool import ConnectionPool

    with _POOLS_LOCK:
        entry = _POOLS.get(url)
        if entry is None:
            pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs=_connect_kwargs(), open=False,
                                  check=ConnectionPool.check_connection, timeout=POOL_TIMEOUT, name="llmxmr")
            pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            entry = _POOLS[url] = [pool, 0]
        entry[1] += 1
    try:
        yield entry[0]
    finally:
        with _POOLS_LOCK:
            entry[1] -= 1
            if entry[1] == 0:
                del _POOLS[url]
                entry[0].close()


@asynccontextmanager
async def open_postgres_async(url: str, *, pool_size: int = POOL_SIZE) -> AsyncIterator[tuple[Any, Any]]:
    """(AsyncPostgresSaver, AsyncPostgresStore) on one async pool, for `ainvoke` / `astream`."""
    require_extra()
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg_pool import AsyncConnectionPool

    _setup(url)
    pool = AsyncConnectionPool(url, min_size=1, max_size=pool_size, kwargs=_connect_kwargs(), open=False,
                               check=AsyncConnectionPool.check_connection, timeout=POOL_TIMEOUT,
                               name="llmxmr-async")
    await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    try:
        yield AsyncPostgresSaver(pool), AsyncPostgresStore(pool)
    finally:
        await pool.close()


# --- the thread lock ---------------------------------------------------------------------------------------

LOCK_SPACE = b"llmxmr-thread:"


def lock_key(thread: str) -> int:
    """A signed 64-bit advisory-lock key for a thread id (a hash: any id, no collisions in practice)."""
    digest = hashlib.sha256(LOCK_SPACE + thread.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _holder(conn: Any, key: int) -> str:
    """Who holds the lock, from the server's own tables (the application name carries pid and host)."""
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    try:
        row = conn.execute(
            "SELECT a.application_name, a.client_addr::text AS addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1 LIMIT 1",
            (classid, objid)).fetchone()
    except Exception:  # noqa: BLE001 - only the message's detail is lost
        row = None
    if not row:
        return "another process"
    since = row["backend_start"].strftime("%Y-%m-%d %H:%M:%S %Z") if row.get("backend_start") else "?"
    name = (row["application_name"] or "").removeprefix("llmxmr ") or "a client"
    return f"{name} (connected from {row.get('addr') or 'a local socket'}) since {since}"


def lock_name(thread: str) -> str:
    return f"advisory lock {lock_key(thread)}"


@contextmanager
def hold_advisory(url: str, thread: str, *, busy: Callable[[str], Exception], wait: bool = False,
                  on_wait: Callable[[str], None] | None = None, poll: float = 0.5) -> Iterator[None]:
    """Hold the thread's advisory lock on a connection of its own for the block. `busy(holder)` makes the
    error raised when it is held and not `wait`."""
    require_extra()
    import psycopg

    key = lock_key(thread)
    conn = probe(url, application=f"llmxmr process {os.getpid()} on {socket.gethostname()}")
    try:
        told = False
        while True:
            try:
                got = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,)).fetchone()["got"]
            except psycopg.Error as exc:
                raise explain(exc, url) from None
            if got:
                break
            holder = _holder(conn, key)
            if not wait:
                raise busy(holder)
            if on_wait is not None and not told:
                on_wait(f"thread {thread} is being worked by {holder}; waiting for it (--wait)")
                told = True
            time.sleep(poll)
        try:
            yield
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                pass  # the connection is gone: so is its lock
    finally:
        conn.close()
