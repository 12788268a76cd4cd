"""Durable runs: the checkpointer and store of a CLI run (a SQLite file, or a PostgreSQL database given by a
postgresql:// URL), thread ids, starting, resuming and collecting the result. The CLI is a thin layer over
these functions; notebooks can use them too."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.sqlite import SqliteStore

from llmxmr import run_store
from llmxmr.environment import storage_problem
from llmxmr.export import SurveyReport, write_outputs
from llmxmr.graph.build import build_graph
from llmxmr.models.caller import wait_for_requests_in_flight
from llmxmr.state.context import Settings, SettingsError, apply_overrides

BUSY_TIMEOUT_MS = 30_000  # how long a write waits for another connection's lock before "database is locked"
IN_FLIGHT_GRACE = 300.0  # seconds to wait for paid answers still on their way when a run stops on an error
RECURSION_LIMIT = 20_000  # our loops carry their own guards; this only stops a bug from spinning forever
# Settings that do not change what a run computes: not part of the thread id, and applied when a re-run
# of the same command resumes an unfinished thread (a new base URL, more concurrency).
CONNECTION_SETTINGS = ("base_url", "max_concurrency", "request_timeout", "requests_per_minute", "tokens_per_minute",
                       "review_outline")
# Failure kinds that are notes rather than failures: they do not turn exit code 0 into 3.
NOTICE_KINDS = {"truncated", "citation", "edit_rejected", "unknown_section", "heading",
                "batch_lines", "batch_unavailable"}  # batch mode: those lines went as ordinary calls


@dataclass
class Database:
    path: Path | None  # the SQLite file; None on PostgreSQL
    checkpointer: Any  # SqliteSaver / PostgresSaver (or their async classes from open_async_database)
    store: Any  # SqliteStore / PostgresStore
    url: str | None = None  # the postgresql:// URL


def db_target(value: str | Path) -> str | Path:
    """A `--db` value: a postgresql:// URL stays a string, anything else is a SQLite file path."""
    from llmxmr.postgres import is_postgres_url

    if is_postgres_url(value):
        return str(value)
    return Path(value).expanduser().resolve()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: switching to WAL waits for a lock too
    conn.execute("PRAGMA journal_mode=WAL")  # two connections (checkpoints, store) on one file
    # WAL + NORMAL: a commit no longer waits for fsync (4.6 ms -> 0.14 ms per write, measured in bench/);
    # a power cut may lose the last commits, never corrupt the database, and resume re-runs those steps.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def open_database(target: str | Path) -> Iterator[Database]:
    """The checkpointer and store of `target`: a SQLite file (created when missing) or a postgresql:// URL
    (the `postgres` extra; tables are created on first use). A file that is not a database, or one locked by
    another process, raises EnvironmentProblem (one line with the fix)."""
    from llmxmr.postgres import is_postgres_url, open_postgres

    if is_postgres_url(target):
        with open_postgres(str(target)) as (saver, store):
            yield Database(None, saver, store, url=str(target))
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    from llmxmr.thread_lock import setup_lock

    with setup_lock(path):  # switching to WAL and creating the tables: one opener at a time
        conns: list[sqlite3.Connection] = []
        try:
            conns.append(_connect(path))
            conns.append(_connect(path))
            saver_conn, store_conn = conns
            saver, store = SqliteSaver(saver_conn), SqliteStore(store_conn)
            saver.setup()
            store.setup()
        except sqlite3.DatabaseError as exc:
            for conn in conns:
                conn.close()
            raise (storage_problem(exc, path) or exc) from None
        except BaseException:
            for conn in conns:
                conn.close()
            raise
    try:
        yield Database(path, saver, store)
    finally:
        try:  # fold the write-ahead log into the database file and empty it: the file on disk is the run
            saver_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # another process has the database open: its last close truncates
        saver_conn.close()
        store_conn.close()


@asynccontextmanager
async def open_async_database(target: str | Path) -> AsyncIterator[Database]:
    """Async checkpointer and store for `graph.ainvoke` / `graph.astream`: PostgreSQL's async classes on an
    async pool. Nodes are sync functions run in worker threads; they reach the async store through the
    event loop, which the store's sync methods do for them."""
    from llmxmr.postgres import DatabaseError, is_postgres_url, open_postgres_async

    if not is_postgres_url(target):
        raise DatabaseError(f"open_async_database needs a postgresql:// URL, got {target}. Fix: use "
                            "open_database (sync) for a SQLite file")
    async with open_postgres_async(str(target)) as (saver, store):
        yield Database(None, saver, store, url=str(target))


def thread_id_for(corpus: Path, survey_index: int, settings: Settings, title: str | None = None) -> str:
    """Same corpus, title and settings -> same thread, so re-running a command resumes instead of paying
    again; a changed title or setting that changes the article is a new thread, never silently ignored."""
    digest = hashlib.sha256()
    if title:  # no title: the thread ids of runs from before titles counted stay as they were
        digest.update(f"title:{title}\n".encode("utf-8", "surrogatepass"))  # a title from argv may hold lone surrogates
    if corpus.is_file():
        digest.update(_file_digest(corpus).encode())
    else:
        digest.update(_dir_fingerprint(corpus, settings.follow_links))
    knobs = settings.model_dump(exclude=set(CONNECTION_SETTINGS))
    if not knobs.get("follow_links"):  # off (the default): thread ids of runs from before the setting stay
        knobs.pop("follow_links", None)
    digest.update(json.dumps(knobs, sort_keys=True).encode())
    stem = run_store.safe_label(corpus.stem)[:24]
    return f"{stem}-{survey_index}-{digest.hexdigest()[:10]}"


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:  # streamed: a large file is never held in memory
        return hashlib.file_digest(f, "sha256").hexdigest()


def _dir_fingerprint(folder: Path, follow_links: bool = False) -> bytes:
    """Hashes of the files the corpus loader reads (not .git, not unsupported types, not links out)."""
    from llmxmr.corpus import loaded_files

    parts = [f"{f.relative_to(folder)}:{_file_digest(f)}" for f in loaded_files(folder, follow_links)]
    return "\n".join(parts).encode()


def config_for(thread_id: str, settings: Settings) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}, "max_concurrency": settings.max_concurrency,
            "recursion_limit": RECURSION_LIMIT}


@dataclass
class RunStatus:
    exists: bool
    finished: bool
    values: dict[str, Any]


def status(graph: Any, config: dict[str, Any]) -> RunStatus:
    snapshot = graph.get_state(config)
    values = dict(snapshot.values or {})
    if not values:
        return RunStatus(False, False, {})
    return RunStatus(True, not snapshot.next and bool(values.get("report")), values)


def saved_settings(db: Database, values: dict[str, Any], *, need_base_url: bool = True) -> Settings:
    run_id = values.get("run_id")
    saved = run_store.get_settings(db.store, run_id) if run_id else None
    if saved is None:
        raise LookupError("this thread has no saved settings yet: start it again with `llmxmr run`")
    if need_base_url and run_store.has_redacted_base_url(saved):
        raise SettingsError(f"this run's base_url {saved['base_url']} had a password, which is not stored. "
                            "Fix: pass --base-url with the full URL again")
    return Settings(**saved)


def override_settings(db: Database, values: dict[str, Any], overrides: dict[str, Any]) -> Settings:
    """Resume with overrides: the merged settings replace the saved ones, so pending tasks use them too."""
    settings = apply_overrides(saved_settings(db, values, need_base_url="base_url" not in overrides), overrides)
    run_store.put_settings(db.store, values["run_id"], settings.model_dump())
    return settings


def stream_config(config: dict[str, Any]) -> dict[str, Any]:
    """`config` for a sync `graph.stream`: LangGraph's stream parks a waiter for stream events on one of the
    max_concurrency worker threads; without an extra worker, max_concurrency=1 deadlocks and N runs only N-1
    nodes at once (measured in bench/: 19 of 20 requests in flight, 54 s instead of 50 s at 1 s per call)."""
    return {**config, "max_concurrency": int(config.get("max_concurrency") or 1) + 1}


def drive(graph: Any, payload: Any, config: dict[str, Any], *, context: Any = None,
          on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run (or resume with payload None) to the end, passing custom progress events to `on_event`."""
    config = stream_config(config)
    try:
        for item in graph.stream(payload, config, context=context, stream_mode="custom", subgraphs=True):
            event = item[1] if isinstance(item, tuple) else item
            if on_event is not None and isinstance(event, dict):
                on_event(event)
    except Exception:
        # A failed branch stops the run while its siblings still wait for answers already paid for: let
        # those land in the response record before the caller closes the database.
        wait_for_requests_in_flight(IN_FLIGHT_GRACE)
        raise


@dataclass
class Version:
    """One finished version of a thread's survey: the first run is version 1, each update adds one."""

    number: int
    values: dict[str, Any]  # the graph's state at that version's end (article, report, changelog, ...)
    checkpoint_id: str
    created_at: str


def versions(graph: Any, thread: str) -> list[Version]:
    """Every finished version of a thread, oldest first, from LangGraph's checkpoint history: an update is a
    new checkpoint of the same thread, so the earlier versions stay readable."""
    found: dict[int, Version] = {}
    for snapshot in graph.get_state_history({"configurable": {"thread_id": thread}}):  # newest first
        values = snapshot.values or {}
        if snapshot.next or not values.get("report"):
            continue  # a step inside a run or an update, not the end of a version
        number = int(values.get("version") or 1)
        if number not in found:
            found[number] = Version(number, dict(values), str(snapshot.config["configurable"]["checkpoint_id"]),
                                    str(snapshot.created_at or ""))
    return [found[n] for n in sorted(found)]


def serious_failures(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report.get("failures", []) if f.get("kind") not in NOTICE_KINDS]


CHANGELOG_NAME = "CHANGELOG.md"


def write_result(values: dict[str, Any], outdir: Path) -> tuple[Path, Path, SurveyReport]:
    """survey.md, survey.json and the files beside them; CHANGELOG.md once the survey has been updated."""
    report = SurveyReport(**values["report"])
    md, js = write_outputs(outdir, report)
    if values.get("changelog"):
        from llmxmr.artifacts import atomic_write
        from llmxmr.core.changes import render_changelog

        atomic_write(outdir / CHANGELOG_NAME, render_changelog(values["changelog"]))
    return md, js, report


def graph_for(db: Database, models: Any = None) -> Any:
    return build_graph(models=models, checkpointer=db.checkpointer, store=db.store)
