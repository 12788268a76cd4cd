"""The PostgreSQL backend on a real, throw-away server (the `pg_server` fixture in conftest.py): the scripted
pipeline, re-runs and the outline review through the CLI, the advisory thread lock, one-line errors, and
resume after SIGKILL from another process with another working folder and home, paying nothing twice."""

from __future__ import annotations

import builtins
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from test_resume_kill import (  # noqa: F401 - `baseline` is a fixture
    CORPUS,
    SMALL,
    KillAfter,
    baseline,
    cli_env,
    delivered,
    llmxmr,
    paid_twice,
)
from test_resume_kill import REFINE_STAGES as REFINE

from llmxmr import cli
from llmxmr.testing.responder import stage_of
from llmxmr.testing.scripted_server import scripted_server
from llmxmr.thread_lock import ThreadBusyError, hold_thread

pytestmark = [pytest.mark.usefixtures("offline_env"), pytest.mark.postgres, pytest.mark.timeout(300)]

TINY = ["--set", "max_layers=0", "--set", "max_blocks=1", "--set", "refine_rounds=0", "--set", "best_of=1", "-q"]


def run_cli(corpus: Path, out: Path, db: str, base_url: str, *extra: str) -> int:
    return cli.main(["run", str(corpus), "-o", str(out), "--db", db, "--model", "openai:scripted",
                     "--base-url", base_url, *TINY, *extra])


def test_pipeline_on_postgres_equals_sqlite_and_a_rerun_pays_nothing(pg_url: str, tmp_path: Path) -> None:
    with scripted_server() as stub:
        assert run_cli(CORPUS, tmp_path / "lite", str(tmp_path / "runs.sqlite"), stub.base_url, "--thread", "t") == 0
        lite_calls = len(stub.chat_requests)
    with scripted_server() as stub:
        assert run_cli(CORPUS, tmp_path / "pg", pg_url, stub.base_url, "--thread", "t") == 0
        pg_calls = len(stub.chat_requests)
        assert run_cli(CORPUS, tmp_path / "again", pg_url, stub.base_url, "--thread", "t") == 0
        assert len(stub.chat_requests) == pg_calls  # complete: outputs written again from the database
    assert pg_calls == lite_calls
    lite = json.loads((tmp_path / "lite" / "survey.json").read_text())
    pg = json.loads((tmp_path / "pg" / "survey.json").read_text())
    assert pg["content"] == lite["content"]
    assert json.loads((tmp_path / "again" / "survey.json").read_text())["content"] == lite["content"]
    assert (tmp_path / "pg" / "outline-b0.md").is_file()  # artifacts, as on SQLite
    assert not list((tmp_path / "pg").glob("*.sqlite*"))  # nothing of the run went to a file


def test_outline_review_and_budget_on_postgres(pg_url: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from llmxmr.review_cli import REVIEW_JSON

    out = tmp_path / "out"
    with scripted_server() as stub:
        code = run_cli(CORPUS, out, pg_url, stub.base_url, "--thread", "r", "--review-outline")
        err = capsys.readouterr().err
        assert code == 1 and (out / REVIEW_JSON).is_file(), err  # waits for the review
        assert f"llmxmr resume r --db {pg_url} -o {out}" in err
        outline = json.loads((out / REVIEW_JSON).read_text())
        outline["sections"][0]["title"] = "Edited in Postgres"
        (out / REVIEW_JSON).write_text(json.dumps(outline))
        code = cli.main(["resume", "r", "--db", pg_url, "-o", str(out), "-q", "--base-url", stub.base_url])
        assert code in (0, 3), capsys.readouterr().err
        # A budget (the run's spent count lives in the store) too small for refinement: it is skipped.
        code = run_cli(CORPUS, tmp_path / "budget", pg_url, stub.base_url, "--thread", "b", "--set", "max_calls=57")
        assert code in (0, 3), capsys.readouterr().err
    assert "Edited in Postgres" in (out / "survey.md").read_text()
    report = json.loads((tmp_path / "budget" / "survey.json").read_text())
    assert report["stop_reason"].startswith("budget")
    assert sum(u["calls"] for u in report["usage"].values()) <= 57


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    return " ".join(err.split())


def test_database_errors_are_one_line_and_name_the_fix(pg_server: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from llmxmr.testing.postgres_server import free_port

    out = str(tmp_path / "out")
    base = "http://127.0.0.1:9/v1"  # never reached: the database fails first
    refused = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    msg = _one_line_error(capsys, run_cli(CORPUS, Path(out), refused, base))
    assert "connection refused" in msg and "Fix: start the server" in msg
    msg = _one_line_error(capsys, run_cli(CORPUS, Path(out), "postgresql://u:secret@[oops/db", base))
    assert "not a valid PostgreSQL URL" in msg and "secret" not in msg
    msg = _one_line_error(capsys, run_cli(CORPUS, Path(out), pg_server.url("nosuch"), base))
    assert "has no database nosuch" in msg and "createdb nosuch" in msg
    pg_server.sql("DO $$ BEGIN CREATE ROLE reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    msg = _one_line_error(capsys, run_cli(CORPUS, Path(out), pg_server.url("postgres", user="reader"), base))
    assert "user reader may not create" in msg and "GRANT CREATE" in msg
    msg = _one_line_error(capsys, cli.main(["resume", "t", "--db", refused, "-o", out]))
    assert "connection refused" in msg


def test_missing_extra_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    real_import = builtins.__import__

    def no_psycopg(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("psycopg", "psycopg_pool"):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    msg = _one_line_error(capsys, run_cli(CORPUS, tmp_path, "postgresql://u@127.0.0.1:5/db", "http://127.0.0.1:9/v1"))
    assert "needs the postgres extra" in msg and "pip install 'llmxmr[postgres]'" in msg


def test_advisory_lock_is_exclusive_names_its_holder_and_dies_with_its_process(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with hold_thread(pg_url, "a.b"):
        with pytest.raises(ThreadBusyError, match=f"process {os.getpid()} on .* since"):
            with hold_thread(pg_url, "a.b"):
                pass
        with hold_thread(pg_url, "a_b"):  # another thread of the same database is free
            pass
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from llmxmr.thread_lock import hold_thread\n"
        f"with hold_thread({pg_url!r}, 'a.b'):\n    print('held', flush=True); time.sleep(120)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ThreadBusyError, match=f"process {holder.pid} on"):
            with hold_thread(pg_url, "a.b"):
                pass
        # The CLI on a held thread: exit 2, the holder named, nothing paid.
        with scripted_server() as stub:
            code = run_cli(CORPUS, tmp_path / "out", pg_url, stub.base_url, "--thread", "a.b")
            assert stub.chat_requests == []
        msg = _one_line_error(capsys, code)
        assert f"thread a.b is being worked by process {holder.pid} on" in msg and "--wait" in msg
        holder.kill()  # SIGKILL: no unlock is ever sent; the server drops the lock with the session
        holder.wait(30)
        with hold_thread(pg_url, "a.b", wait=True, poll=0.1):
            pass
    finally:
        holder.kill()
        holder.wait(30)


def test_waiting_for_another_process_setting_up_the_tables_cannot_deadlock(pg_url: str) -> None:
    """Two workers starting on one new database: the first migrates (the store's migrations include CREATE
    INDEX CONCURRENTLY, which waits for every open transaction) while the second waits for the setup lock.
    A wait made inside one blocking statement was such a transaction, and PostgreSQL reported a deadlock
    (seen in CI). Here connection A holds the lock and builds an index concurrently while _setup waits."""
    import psycopg

    from llmxmr import postgres

    with psycopg.connect(pg_url, autocommit=True) as a:
        a.execute("SELECT pg_advisory_lock(%s)", (postgres.SETUP_LOCK_KEY,))
        a.execute("CREATE TABLE t (x int)")
        failure: list[BaseException] = []

        def set_up() -> None:
            try:
                postgres._setup(pg_url)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failure.append(exc)

        waiter = threading.Thread(target=set_up)
        waiter.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'llmxmr' AND pid <> pg_backend_pid()"
        for _ in range(100):  # until the waiter is connected and polling
            if a.execute(waiting).fetchone()[0]:
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.3)
        a.execute("SET statement_timeout = '20s'")
        a.execute("CREATE INDEX CONCURRENTLY t_x ON t (x)")  # finishes: the waiter holds no transaction open
        assert waiter.is_alive() and not failure  # still waiting for the lock
        a.execute("SELECT pg_advisory_unlock(%s)", (postgres.SETUP_LOCK_KEY,))
        waiter.join(60)
    assert not waiter.is_alive() and not failure, failure
    with psycopg.connect(pg_url) as conn:  # the waiter went on to create the tables
        assert conn.execute("SELECT to_regclass('checkpoints'), to_regclass('store')").fetchone() == ("checkpoints", "store")


def test_sigkill_then_resume_from_another_folder_and_home_pays_nothing_twice(
        baseline: dict[str, Any], pg_url: str, tmp_path: Path) -> None:
    """Process 1 (cwd A, HOME A) is SIGKILLed inside refinement; process 2 (cwd B, HOME B, another model
    server) resumes from the same database: no delivered answer is asked for again, the article is equal."""
    k = baseline["refine"][len(baseline["refine"]) // 2] + 1
    machines = []
    for name in ("a", "b"):
        home = tmp_path / name / "home"
        home.mkdir(parents=True)
        machines.append((tmp_path / name, {**cli_env(), "HOME": str(home)}))
    out_b = tmp_path / "b" / "out"
    killer = KillAfter(k)
    stub1 = scripted_server(fault=killer.fault)
    stub1.on_delivered = killer.on_delivered
    with stub1:
        proc = subprocess.Popen(llmxmr("run", str(CORPUS), "-o", "out", "--db", pg_url, "--thread", "t1",
                                       "--model", "openai:scripted", "--base-url", stub1.base_url, *SMALL),
                                cwd=machines[0][0], env=machines[0][1], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        killer.pid = proc.pid
        try:
            _, err1 = proc.communicate(timeout=180)
        finally:
            killer.frozen.set()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -signal.SIGKILL, err1
    assert stage_of(killer.kth["body"]["messages"]) in REFINE
    with scripted_server() as stub2:
        res = subprocess.run(llmxmr("resume", "t1", "--db", pg_url, "-o", "out", "-q", "--base-url", stub2.base_url),
                             cwd=machines[1][0], env=machines[1][1], capture_output=True, text=True, timeout=180,
                             check=False)
    assert res.returncode == 0, res.stderr
    before = delivered(stub1)
    assert len(before) >= k
    assert paid_twice(baseline["bodies"], before, stub2.chat_requests) == []
    assert len(before) + len(stub2.chat_requests) <= baseline["calls"]
    assert json.loads((out_b / "survey.json").read_text())["content"] == baseline["content"]


def multi_corpus(path: Path, surveys: int) -> Path:
    """`surveys` surveys of the mini corpus, each with its own papers (no answer is shared between them)."""
    base = json.loads(CORPUS.read_text().splitlines()[0])
    lines = []
    for i in range(surveys):
        papers = [{**p, "title": f"{p['title']} ({i})", "txt": f"Survey {i}. {p['txt']}"} for p in base["papers"]]
        lines.append(json.dumps({**base, "title": f"{base['title']} {i}", "papers": papers}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def job(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 3-survey corpus, and what one worker alone (2 surveys at once) pays for it and writes."""
    folder = tmp_path_factory.mktemp("job")
    corpus = multi_corpus(folder / "job.jsonl", 3)
    with pytest.MonkeyPatch.context() as mp, scripted_server() as stub:
        mp.setenv("OPENAI_API_KEY", "x")
        alone = pg_server.new_database(f"alone_{os.getpid()}")
        assert run_cli(corpus, folder / "alone", alone, stub.base_url, "--parallel-surveys", "2") == 0
        calls = len(stub.chat_requests)
    contents = {p.name: json.loads((p / "survey.json").read_text())["content"]
                for p in sorted((folder / "alone").iterdir()) if p.is_dir()}
    assert len(contents) == 3 and all(contents.values())
    return {"corpus": corpus, "calls": calls, "contents": contents}


def worker(job: dict[str, Any], pg_url: str, base_url: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen(llmxmr("run", str(job["corpus"]), "--db", pg_url, "--model", "openai:scripted",
                                   "--base-url", base_url, *TINY, "-o", str(out)),
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_outputs(job: dict[str, Any], out: Path) -> None:
    for name, content in job["contents"].items():
        assert json.loads((out / name / "survey.json").read_text())["content"] == content


def test_two_workers_on_one_multi_survey_job_work_each_survey_once(job: dict[str, Any], pg_url: str,
                                                                   tmp_path: Path) -> None:
    with scripted_server() as stub:
        workers = [worker(job, pg_url, stub.base_url, tmp_path / f"w{i}") for i in range(2)]
        errs = [w.communicate(timeout=240)[1] for w in workers]
        assert [w.returncode for w in workers] == [0, 0], errs
        assert len(stub.chat_requests) == job["calls"]  # every survey worked once between the two workers
    for w in ("w0", "w1"):  # each worker writes every survey's outputs (the other's from the database)
        assert_outputs(job, tmp_path / w)


def test_a_dead_workers_survey_is_taken_over_by_another(job: dict[str, Any], pg_url: str, tmp_path: Path) -> None:
    """Worker A freezes inside survey 1 (its answers held) while worker B works surveys 2 and 3 and then waits
    for survey 1; A is SIGKILLed, its advisory lock dies with it, and B resumes survey 1 and finishes it."""
    held, lock = threading.Event(), threading.Lock()
    answered = {"n": 0}

    def freeze_after_five(stage: str, request: dict[str, Any]) -> dict[str, Any] | None:
        with lock:
            answered["n"] += 1
            frozen = answered["n"] > 5
        if frozen:
            held.set()
            threading.Event().wait(60)  # never answered: A dies meanwhile
            return {"drop": True}
        return None

    stub_a = scripted_server(fault=freeze_after_five)
    with stub_a:
        a = worker(job, pg_url, stub_a.base_url, tmp_path / "a")
        try:
            assert held.wait(120), "worker A never reached its sixth request"
            with scripted_server() as stub_b:
                b = worker(job, pg_url, stub_b.base_url, tmp_path / "b")
                others = [tmp_path / "b" / name / "survey.json" for name in list(job["contents"])[1:]]
                deadline = 120.0
                while deadline > 0 and not all(p.is_file() for p in others):
                    threading.Event().wait(0.2)
                    deadline -= 0.2
                assert all(p.is_file() for p in others), "B did not work the surveys A does not hold"
                assert b.poll() is None  # B waits for survey 1, which A holds
                a.kill()
                _, err_b = b.communicate(timeout=180)
                b_calls = len(stub_b.chat_requests)
        finally:
            a.kill()
            a.wait(30)
    assert b.returncode == 0, err_b
    assert_outputs(job, tmp_path / "b")
    a_paid = len([r for r in stub_a.chat_requests if r["written"]])
    assert a_paid == 5
    assert a_paid + b_calls == job["calls"]  # what A was paid for was not paid again


def test_parallel_surveys_share_one_request_cap(tmp_path: Path) -> None:
    """--parallel-surveys 3 --max-in-flight 2: three surveys at once, never more than 2 requests in flight."""
    corpus = multi_corpus(tmp_path / "job.jsonl", 3)
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()
    gate = threading.Event()

    def fault(stage: str, request: dict[str, Any]) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        gate.wait(0.05)  # a little latency so that requests overlap
        with lock:
            state["now"] -= 1

    with scripted_server(fault=fault) as stub:
        code = run_cli(corpus, tmp_path / "out", str(tmp_path / "runs.sqlite"), stub.base_url,
                       "--parallel-surveys", "3", "--max-in-flight", "2", "--set", "max_concurrency=4")
    assert code == 0
    assert state["peak"] == 2
    assert len([p for p in (tmp_path / "out").iterdir() if (p / "survey.md").is_file()]) == 3


def test_database_gone_mid_run_then_back_loses_nothing_finished(pg_server: Any, pg_url: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The server stops (immediate shutdown) while answer 20 is on its way: the run stops with a one-line
    database message and the resume command; once the server is back, the resume finishes, paying only
    for what was not recorded before the stop."""
    with scripted_server() as stub:
        assert run_cli(CORPUS, tmp_path / "whole", str(tmp_path / "runs.sqlite"), stub.base_url, "--thread", "g") == 0
        whole = len(stub.chat_requests)
    lock = threading.Lock()
    seen = {"n": 0}

    def stop_database_at_20(stage: str, request: dict[str, Any]) -> None:
        with lock:
            seen["n"] += 1
            if seen["n"] == 20:
                pg_server.stop()

    monkeypatch.setattr("llmxmr.postgres.POOL_TIMEOUT", 3.0)  # steps give up on the stopped server sooner
    out = tmp_path / "out"
    try:
        with scripted_server(fault=stop_database_at_20) as stub:
            code = run_cli(CORPUS, out, pg_url, stub.base_url, "--thread", "g")
            first = len(stub.chat_requests)
    finally:
        pg_server.start()
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err and "PostgreSQL at 127.0.0.1" in err, err
    assert f"llmxmr resume g --db {pg_url} -o {out}" in err
    with scripted_server() as stub:
        code = cli.main(["resume", "g", "--db", pg_url, "-o", str(out), "-q", "--base-url", stub.base_url])
        again = len(stub.chat_requests)
    assert code == 0, capsys.readouterr().err
    assert 20 <= first < whole
    # Answers recorded before the stop are not paid again. Answers delivered in the instant the server went
    # down (other requests in flight when answer 20 arrived) may not have reached the database: allow those.
    assert again <= whole - 19 + (first - 20) + 8, (again, whole, first)
    assert again < whole
    assert json.loads((out / "survey.json").read_text())["content"] == \
        json.loads((tmp_path / "whole" / "survey.json").read_text())["content"]


def test_astream_and_ainvoke_with_the_async_saver_and_store(pg_url: str, tmp_path: Path) -> None:
    """`astream` with AsyncPostgresSaver + AsyncPostgresStore (sync nodes reach the async store through the
    event loop) pays what the sync CLI run pays, and `ainvoke` on the finished thread pays nothing."""
    import asyncio

    from llmxmr.runs import RECURSION_LIMIT, graph_for, open_async_database
    from llmxmr.state.context import Context

    async def main(stub: Any) -> tuple[int, dict[str, Any], dict[str, Any], int]:
        base_url = stub.base_url
        async with open_async_database(pg_url) as db:
            graph = graph_for(db)
            ctx = Context(model="openai:scripted", base_url=base_url, max_layers=0, max_blocks=1, refine_rounds=0,
                          best_of=1)
            config = {"configurable": {"thread_id": "a1"}, "recursion_limit": RECURSION_LIMIT}
            events = [e async for e in graph.astream({"corpus_path": str(CORPUS)}, config, context=ctx,
                                                     stream_mode="custom")]
            values = (await graph.aget_state(config)).values
            paid = len(stub.chat_requests)
            again = await graph.ainvoke(None, config, context=ctx)
            return len(events), values, again, paid

    with scripted_server() as stub:  # the sync figure, on a database of its own (answers are shared by runs)
        assert run_cli(CORPUS, tmp_path / "sync", str(tmp_path / "runs.sqlite"), stub.base_url, "--thread", "a1") == 0
        sync_calls = len(stub.chat_requests)
    with scripted_server() as stub:
        n_events, values, again, async_calls = asyncio.run(main(stub))
        after = len(stub.chat_requests)
    assert n_events > 10 and values["report"]["stop_reason"]
    assert async_calls == sync_calls
    assert again["article"] == values["article"]  # the finished thread: no call
    assert after == async_calls
    sync = json.loads((tmp_path / "sync" / "survey.json").read_text())
    assert values["report"]["content"] == sync["content"]
