"""`llmxmr`: run, resume and inspect survey runs from the command line.

Exit codes: 0 complete; 3 complete with recorded failures; 2 bad input or usage; 1 stopped by an error
(the resume command is printed).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmxmr.console import Console, bill_line, usage_table

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FAILURES = 0, 1, 2, 3


def _settings_epilog() -> str:
    from llmxmr.state.context import effective_defaults

    lines = ["settings for --set FIELD=VALUE (VALUE is JSON when it parses, else a string; defaults: mode=default"
             " / mode=reference):"]
    lines += [f"  {name} ({d if d == r else f'{d} / {r}'}): {desc}" for name, d, r, desc in effective_defaults()]
    return "\n".join(lines)


def _add_batch_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", metavar="STAGES",
                   help="send these stages as OpenAI Batch API jobs (half price, answers within 24 h): map, "
                        "digest or map,digest; openai: models only (same as --set batch=...)")


def _add_price_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--price-in", type=float, help="$ per million prompt tokens")
    p.add_argument("--price-out", type=float, help="$ per million completion tokens")
    p.add_argument("--price-cached", type=float,
                   help="$ per million prompt tokens served from the provider's prompt cache (default: --price-in)")


def prices_of(args: argparse.Namespace) -> tuple[float, float, float | None] | None:
    """(in, out, cached) per million tokens, or None when no price was given."""
    if args.price_in is None and args.price_out is None and args.price_cached is None:
        return None
    return args.price_in or 0.0, args.price_out or 0.0, args.price_cached


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model of every role: local, gguf:PATH, openai:NAME, google_genai:NAME")
    p.add_argument("--base-url", help="base URL of an OpenAI-compatible server (vLLM, Ollama, LM Studio)")
    p.add_argument("--judge-model", help="model of the judge role (entropy scoring)")
    p.add_argument("--writer-model", help="model of the writer role (sections, polish, charts)")
    p.add_argument("--follow-links", action="store_true", default=None,
                   help="read symbolic links in a folder corpus that point outside it (skipped by default)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE",
                   help="set any setting (see `llmxmr settings`); repeatable")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more output (progress lines without a terminal)")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors and the final summary")
    from llmxmr.review_cli import add_flag

    add_flag(p)  # --review-outline


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="llmxmr", description="Long, cited surveys from many sources (LLM×MapReduce-V2).")
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="write a survey from a corpus", epilog=_settings_epilog(),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("corpus", help="reference-format JSONL file (one survey per line) or a folder of documents")
    run.add_argument("-o", "--out", required=True, help="output folder (survey.md, survey.json)")
    run.add_argument("--mode", choices=["default", "reference"], help="improved method (default) or the reference's")
    run.add_argument("--thread", help="thread id (default: derived from the corpus and settings)")
    run.add_argument("--db", help="SQLite file of checkpoints and store (default OUT/runs.sqlite), or a "
                                  "postgresql://USER@HOST:PORT/DATABASE URL (the postgres extra)")
    run.add_argument("--title", help="survey title for a folder corpus")
    run.add_argument("--wait", action="store_true", help="when another process works the thread, wait for it")
    run.add_argument("--parallel-surveys", type=int, default=1, metavar="K",
                     help="a corpus of several surveys: work K of them at once (default 1)")
    run.add_argument("--max-in-flight", type=int, metavar="N",
                     help="one limit on model requests in flight across all surveys of this run "
                          "(default: max_concurrency)")
    run.add_argument("--processes", type=int, default=1, metavar="P",
                     help="work the --parallel-surveys in P processes of this machine, one core each for the "
                          "client's work (default 1; the limits are shared out between them)")
    run.add_argument("--worker-slot", help=argparse.SUPPRESS)  # "I/P": a helper process of --processes
    _add_model_flags(run)
    _add_price_flags(run)
    _add_batch_flag(run)
    res = sub.add_parser("resume", help="continue a stopped run with the settings it started with")
    res.add_argument("thread", help="thread id printed when the run stopped")
    res.add_argument("--db", required=True, help="SQLite file or postgresql:// URL of the run")
    res.add_argument("-o", "--out", required=True, help="output folder")
    res.add_argument("--wait", action="store_true", help="when another process works the thread, wait for it")
    _add_model_flags(res)
    _add_price_flags(res)
    upd = sub.add_parser("update", help="add or remove documents of a finished survey: only what changed is re-written",
                         epilog=_settings_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    upd.add_argument("thread", help="thread id of the finished run")
    upd.add_argument("--db", required=True, help="SQLite file or postgresql:// URL of the run")
    upd.add_argument("-o", "--out", required=True, help="output folder (survey.md, survey.json, CHANGELOG.md)")
    upd.add_argument("--add", metavar="JSONL|DIR", help="documents to add: a reference-format JSONL file or a folder")
    upd.add_argument("--remove", nargs="+", action="extend", default=[], metavar="ID",
                     help="paper ids to remove (see survey.json `papers`); repeatable")
    upd.add_argument("--refine", choices=["auto", "always", "never"], default="auto",
                     help="refine the outline again: when the new documents' suggestions raise its entropy score "
                          "by more than epsilon (auto), always, or never")
    upd.add_argument("--wait", action="store_true", help="when another process works the thread, wait for it")
    _add_model_flags(upd)
    _add_price_flags(upd)
    show = sub.add_parser("show", help="list the versions of a thread's survey, or write one of them")
    show.add_argument("thread", help="thread id")
    show.add_argument("--db", required=True, help="SQLite file or postgresql:// URL of the run")
    show.add_argument("--version", type=int, help="the version to write or print (1 = the first run)")
    show.add_argument("-o", "--out", help="write that version's survey.md, survey.json (and CHANGELOG.md) here; "
                                          "default: print its article")
    show.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)
    show.add_argument("-q", "--quiet", action="store_true", help="only errors and the article or table")
    pl = sub.add_parser("plan", help="expected calls, tokens (and money) per stage, before paying")
    pl.add_argument("corpus", nargs="?", help="the corpus a `run` would read (not with --update)")
    pl.add_argument("--update", metavar="THREAD", help="plan an update of this finished thread instead "
                                                       "(refine=never; with --db, --add and/or --remove)")
    pl.add_argument("--db", help="SQLite file or postgresql:// URL of the thread (with --update)")
    pl.add_argument("--add", metavar="JSONL|DIR", help="documents the update adds (with --update)")
    pl.add_argument("--remove", nargs="+", action="extend", default=[], metavar="ID",
                    help="paper ids the update removes (with --update)")
    pl.add_argument("--mode", choices=["default", "reference"])
    pl.add_argument("--title", help="survey title for a folder corpus")
    pl.add_argument("--sections", type=int, help="expected sections of the outline (default: from the corpus size)")
    _add_price_flags(pl)
    _add_batch_flag(pl)
    _add_model_flags(pl)
    sub.add_parser("settings", help="list every setting with its default and description")
    from llmxmr.eval.command import add_parser as add_eval_parser

    add_eval_parser(sub)
    return top


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    from llmxmr.state.context import CONTEXT_FIELDS, SettingsError, parse_setting_value

    values: dict[str, Any] = {}
    for item in args.sets:
        field, sep, raw = item.partition("=")
        field = field.strip()
        if not sep:
            raise SettingsError(f"--set needs FIELD=VALUE, got {item!r}")
        if field not in CONTEXT_FIELDS:
            raise SettingsError(f"unknown setting {field!r}; valid names: {', '.join(CONTEXT_FIELDS)}")
        values[field] = parse_setting_value(raw)
    for flag, field in (("model", "model"), ("base_url", "base_url"), ("judge_model", "judge_model"),
                        ("writer_model", "writer_model"), ("mode", "mode"),
                        ("review_outline", "review_outline"), ("follow_links", "follow_links"),
                        ("batch", "batch")):
        value = getattr(args, flag, None)
        if value is not None:
            values[field] = value
    return values


def check_models(settings: Any) -> None:
    """Catch a malformed model name or missing weights before any paid call."""
    from llmxmr.models.errors import ModelSetupError, ProviderError
    from llmxmr.models.providers import provider_of
    from llmxmr.models.specs import ModelSpec
    from llmxmr.stages import ROLES

    roles: dict[str, list[str]] = {}
    for role in ROLES:
        roles.setdefault(settings.model_for(role), []).append(role)
    for raw, used_by in roles.items():  # one check per distinct model (e.g. one GET BASE_URL/models)
        spec = ModelSpec.parse(raw)
        try:
            provider_of(spec).preflight(spec, settings)
        except ProviderError as exc:
            raise ModelSetupError(f"{exc} (role {', '.join(used_by)}; no model call was made)") from None


def _resume_hint(thread: str, db: Path | str, out: Path) -> str:
    from shlex import quote

    from llmxmr.postgres import redact

    return f"llmxmr resume {quote(thread)} --db {quote(redact(str(db)))} -o {quote(str(out))}"


@contextmanager
def _stop_on_ctrl_c(console: Console, hint: str, before_exit: Callable[[], None] | None = None) -> Iterator[None]:
    """Ctrl-C stops the process at once, like a crash, and prints the resume command.

    Everything a resume needs is already on disk: each response is recorded as it arrives and each finished
    step is checkpointed (SQLite autocommit), so there is nothing to save at this point. Unwinding instead
    would wait for every request in flight (and its retries) before the process could exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        console.stop_live()
        what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        console.error(f"{what}; progress is saved. Resume with:\n  {hint}")
        if before_exit is not None:  # helper processes stop with this one
            before_exit()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(EXIT_ERROR)

    # SIGTERM (kill, systemd, a container stop) is a request to stop like Ctrl-C: same exit, same hint.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _render_documents(console: Console, out: Path, report: Any) -> None:
    """survey.docx and survey.html with formatted citations, when the `export` extra's pandoc is installed."""
    from llmxmr.pandoc_export import pandoc_binary, render_documents

    if not report.pandoc_markdown or pandoc_binary() is None:
        return
    try:
        paths = render_documents(out, report.title)
    except (RuntimeError, OSError) as exc:  # the article is written; a failed extra is only a warning
        console.say(f"warning: pandoc could not render DOCX/HTML: {exc}")
        return
    console.say("rendered " + " and ".join(str(p) for p in paths))


def _finish(console: Console, values: dict[str, Any], out: Path) -> int:
    from llmxmr.runs import serious_failures, write_result

    md, js, report = write_result(values, out)
    _render_documents(console, out, report)
    console.stop_live()
    console.out.print(usage_table(report))  # the final summary: printed with -q too
    if console.prices is not None:
        console.out.print(bill_line(report.usage, *console.prices), markup=False, highlight=False)
    failures = serious_failures(values["report"])
    summary = f"stop reason: {report.stop_reason}\nwrote {md} and {js}"
    if values.get("changelog"):
        from llmxmr.runs import CHANGELOG_NAME

        entry = values["changelog"][-1]
        sections = entry.get("sections") or {}
        summary += (f"\nversion {entry['version']}: {len(sections.get('rewritten') or [])} section(s) rewritten, "
                    f"{len(sections.get('added') or [])} added, {len(sections.get('removed') or [])} removed, "
                    f"{sections.get('kept', 0)} kept verbatim; {entry.get('refine', '')}; see {out / CHANGELOG_NAME}")
    v, sources = report.verification, report.sources
    if v is not None:
        how = "removed from" if report.settings.get("unsupported_claims") == "remove" else "marked [unverified] in"
        left = f"{v.unsupported} still unsupported ({how} survey.md)"
        summary += (f"\ncitations: {v.claims_checked} claims checked, {v.supported_before} supported as written, "
                    f"{v.supported_after} after repair, {left}, {v.unchecked} unchecked")
    if sources is not None:
        coverage = "n/a" if sources.coverage is None else f"{sources.coverage:.0%}"
        summary += (f"\nsources: {len(sources.cited)} of {sources.documents} documents cited (coverage {coverage}); "
                    f"{len(sources.excluded)} excluded, with reasons in survey.json `sources`")
    for spec, limit in report.concurrency.items():
        lowered = f", lowered {limit.decreases}× by time-outs or rate limits" if limit.decreases else ""
        summary += (f"\nin flight: {spec} settled at {limit.settled} request(s) at once (started at {limit.start}, "
                    f"max {limit.max}{lowered})")
    if failures:
        kinds = sorted({f"{f['stage']}/{f['kind']}" for f in failures})
        summary += f" ({_count(len(failures), 'recorded failure')}: {', '.join(kinds)}; see `failures` in survey.json)"
        summary += "".join(f"\nweak article: {f['message']}" for f in failures if f["kind"] == "thin_article")
    console.out.print(summary, markup=False, highlight=False, soft_wrap=True)
    return EXIT_FAILURES if failures else EXIT_OK


def _execute(console: Console, db_path: Path | str, out: Path, thread: str, start: dict[str, Any] | None,
             context: Any, overrides: dict[str, Any], wait: bool = False, busy_ok: bool = False,
             update: dict[str, Any] | None = None, written_since: float | None = None, label: str | None = None) -> int:
    """Work one thread while holding its lock: two processes never work (and pay for) the same thread.
    `busy_ok`: a held thread returns llmxmr.surveys.BUSY (the caller comes back to it) instead of an error.
    `written_since`: a finished thread whose survey.json in `out` is at least that recent (a Unix time) is
    left as it is (another process of the same `--processes` command wrote it). `label`: the survey's name on
    its progress lines, when several surveys share the console."""
    from llmxmr.postgres import DatabaseError
    from llmxmr.surveys import BUSY
    from llmxmr.thread_lock import ThreadBusyError, hold_thread

    try:
        with hold_thread(db_path, thread, wait=wait, on_wait=console.say):
            return _execute_locked(console, db_path, out, thread, start, context, overrides, update, written_since,
                                   label)
    except ThreadBusyError as exc:
        if busy_ok:
            console.say(f"{exc}: coming back to it after the others")
            return BUSY
        console.error(str(exc))
        return EXIT_USAGE
    except DatabaseError as exc:  # unreachable, wrong URL, no permission, missing extra
        console.error(str(exc))
        return EXIT_USAGE


def _begin_update(console: Console, db: Any, graph: Any, st: Any, thread: str, update: dict[str, Any], overrides: dict[str, Any],
                  hint: str) -> Any:
    """Everything an update checks before a paid call; the settings it runs with."""
    from llmxmr.runs import override_settings, saved_settings
    from llmxmr.updates import check_finished, check_overrides, plan_update

    values = st.values
    if values.get("update") and tuple(graph.get_state({"configurable": {"thread_id": thread}}).next) == ("update_start",):
        values = {**values, "update": None}  # an update refused at its first step (from code): this one replaces it
    check_finished(values, thread, hint)
    saved = saved_settings(db, st.values, need_base_url="base_url" not in overrides)
    check_overrides(saved.model_dump(), overrides)
    plan = plan_update(update, st.values["paper_refs"], saved.follow_links)
    for skip in plan.skipped:
        console.say(f"skipped {skip.source}: {skip.reason}")
    for doc in plan.ignored:
        console.say(f"ignored {doc['paper_id']} ({doc['title']}): {doc['reason']}")
    version = int(st.values.get("version") or 1)
    console.say(f"updating thread {thread} from version {version} to {version + 1}: {len(plan.added)} document(s) "
                f"added, {len(plan.removed)} removed, refine={plan.refine}")
    settings = override_settings(db, st.values, overrides) if overrides else saved_settings(db, st.values)
    check_models(settings)
    return settings


def _written_since(out: Path, since: float) -> bool:
    from llmxmr.export import JSON_NAME

    try:
        return (out / JSON_NAME).stat().st_mtime >= since
    except OSError:
        return False


def _execute_locked(console: Console, db_path: Path, out: Path, thread: str, start: dict[str, Any] | None,
                    context: Any, overrides: dict[str, Any], update: dict[str, Any] | None = None,
                    written_since: float | None = None, label: str | None = None) -> int:
    """Start, resume or report one thread; every error becomes a message and an exit code."""
    import sqlite3

    from llmxmr.corpus import CorpusError
    from llmxmr.environment import storage_problem
    from llmxmr.models.errors import (
        BudgetExceededError,
        ContextOverflowError,
        ModelSetupError,
        ProviderError,
    )
    from llmxmr.review_cli import resume_input, settle
    from llmxmr.runs import (
        config_for,
        drive,
        graph_for,
        open_database,
        override_settings,
        status,
    )
    from llmxmr.state.context import SettingsError, resolve_settings
    from llmxmr.updates import UpdateError

    hint = _resume_hint(thread, db_path, out)

    def on_event(event: dict[str, Any]) -> None:
        console.event(event, outdir=out, survey=label)  # artifacts go to this survey's folder (several run at once)

    with open_database(db_path) as db, _stop_on_ctrl_c(console, hint):
        graph = graph_for(db)
        st = status(graph, {"configurable": {"thread_id": thread}})
        try:
            if update is not None:
                settings = _begin_update(console, db, graph, st, thread, update, overrides, hint)
                drive(graph, {"update": update}, config_for(thread, settings), on_event=console.event)
            elif st.finished and written_since is not None and _written_since(out, written_since):
                console.say(f"thread {thread} is complete and its outputs in {out} are written")
                return EXIT_OK
            elif st.finished:
                console.say(f"thread {thread} is already complete: writing its outputs again (no model calls)")
                return _finish(console, st.values, out)
            elif st.exists:
                settings = override_settings(db, st.values, overrides) if overrides else None
                if settings is None:
                    from llmxmr.runs import saved_settings

                    settings = saved_settings(db, st.values)
                console.say(f"resuming thread {thread}")
                check_models(settings)
                drive(graph, resume_input(graph, thread, out), config_for(thread, settings), on_event=on_event)
            else:
                if start is None:
                    console.error(f"no run with thread id {thread} in {_shown(db_path)}")
                    return EXIT_USAGE
                settings = resolve_settings(context)
                check_models(settings)
                console.say(f"thread {thread}: {settings.mode} mode, model {settings.model}")
                drive(graph, start, config_for(thread, settings), context=context, on_event=on_event)
            waiting = settle(console, graph, thread, out, hint,  # --review-outline: the thread waits for a person
                             lambda cmd: drive(graph, cmd, config_for(thread, settings), on_event=on_event))
            if waiting is not None:
                return waiting
            final = status(graph, {"configurable": {"thread_id": thread}})
            if not final.finished:
                console.error(f"the run stopped before finishing. Resume with:\n  {hint}")
                return EXIT_ERROR
            return _finish(console, final.values, out)
        except KeyboardInterrupt:
            console.error(f"interrupted; progress is saved. Resume with:\n  {hint}")
            return EXIT_ERROR
        except (CorpusError, SettingsError, UpdateError) as exc:
            console.error(str(exc))
            return EXIT_USAGE
        except ModelSetupError as exc:
            console.error(f"{exc}\nAfter fixing it, resume with:\n  {hint}" if st.exists else str(exc))
            return EXIT_USAGE
        except (ProviderError, ContextOverflowError, BudgetExceededError, LookupError) as exc:
            console.error(f"{exc}\nProgress is saved. Resume with:\n  {hint}")
            return EXIT_ERROR
        except Exception as exc:  # the database went away, the disk filled up, or a bug: still say how to resume
            problem = _database_failure(exc, db_path)
            if problem is None and isinstance(db_path, Path) and isinstance(exc, (sqlite3.Error, OSError)):
                problem = storage_problem(exc, db_path)
            if problem is not None:
                console.error(f"{problem}\nProgress is saved. Resume with:\n  {hint}")
                return EXIT_ERROR
            console.error(f"{type(exc).__name__}: {exc}\nProgress is saved. Resume with:\n  {hint}")
            if console.verbose:
                raise
            return EXIT_ERROR


def _shown(db: Path | str) -> str:
    from llmxmr.postgres import redact

    return redact(str(db))


def _database_failure(exc: BaseException, db: Path | str) -> str | None:
    """A one-line message for a PostgreSQL error met mid-run (the server stopped, a dropped connection)."""
    from llmxmr.postgres import is_postgres_url

    if not is_postgres_url(db):
        return None
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        return None
    seen: BaseException | None = exc
    while seen is not None:  # LangGraph may wrap it
        if isinstance(seen, (psycopg.Error, psycopg_pool.PoolTimeout)):
            from llmxmr.postgres import explain

            return str(explain(seen, str(db)))
        seen = seen.__cause__ or seen.__context__
    return None


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from llmxmr.corpus import load_surveys
    from llmxmr.environment import check_database_path, check_output_folder
    from llmxmr.models.metering import request_cap
    from llmxmr.runs import CONNECTION_SETTINGS, db_target, thread_id_for
    from llmxmr.state.context import Context, SettingsError, resolve_settings
    from llmxmr.survey_processes import (
        Helpers,
        failure_text,
        parse_slot,
        rotated,
        shares,
    )
    from llmxmr.surveys import FATAL, SurveyJob, run_surveys, worst

    overrides = overrides_from(args)
    settings = resolve_settings(overrides)
    context = Context(**overrides)
    corpus = Path(args.corpus).expanduser().resolve()
    surveys = load_surveys(corpus, title=args.title, follow_links=settings.follow_links)
    check_budget(settings, corpus, args.title)
    out = Path(args.out).expanduser().resolve()
    db_path = db_target(args.db) if args.db else out / "runs.sqlite"
    check_output_folder(out)
    check_database_path(db_path)
    connection = {k: v for k, v in overrides.items() if k in CONNECTION_SETTINGS}
    jobs = []
    for index, survey in enumerate(surveys):
        report_skipped(console, survey)
        folder = out if len(surveys) == 1 else out / f"{index + 1:02d}-{_slug(survey.title)}"
        if not console.quiet:  # several surveys: each one's progress under its folder's name
            console.plan_totals(plan_of(survey, settings)[0], survey=None if len(surveys) == 1 else folder.name)
        thread = args.thread if args.thread and len(surveys) == 1 else (
            f"{args.thread}-{index}" if args.thread else thread_id_for(corpus, index, settings, args.title))
        start = {"corpus_path": str(corpus), "survey_index": index, **({"title": args.title} if args.title else {})}
        jobs.append(SurveyJob(thread, folder, start))
    if len(jobs) == 1:
        return _execute(console, db_path, jobs[0].out, jobs[0].thread, jobs[0].start, context, connection,
                        wait=args.wait)
    if args.parallel_surveys < 1 or args.processes < 1 or (args.max_in_flight is not None and args.max_in_flight < 1):
        raise SettingsError("--parallel-surveys, --processes and --max-in-flight must be at least 1")

    # With --processes, each finished survey's outputs are written once: a helper leaves alone any survey
    # already written (the process that started it writes it), and this process one that a helper wrote.
    started = time.time()
    written_since: float | None = None

    def work(job: SurveyJob, wait: bool) -> int:
        return _execute(console, db_path, job.out, job.thread, job.start, context, connection, wait=wait,
                        busy_ok=not wait, written_since=written_since, label=job.out.name)

    again = "the same `llmxmr run` command (finished surveys are kept, the others resume)"
    limit = args.max_in_flight or settings.max_concurrency
    if args.worker_slot:  # a helper of another process's --processes: its share, the list from its own start
        written_since = 0.0
        index, processes = parse_slot(args.worker_slot)
        with request_cap(limit), _stop_on_ctrl_c(console, again):
            return run_surveys(rotated(jobs, index, processes), work, parallel=args.parallel_surveys,
                               wait=args.wait, come_back=False)
    plan = shares(args.processes, args.parallel_surveys, limit)
    written_since = started if len(plan) > 1 else None
    helpers = Helpers()
    with request_cap(plan[0][1]), _stop_on_ctrl_c(console, again, before_exit=helpers.stop):
        try:
            helpers.start(args.argv, out, plan)
            code = run_surveys(jobs, work, parallel=plan[0][0], wait=args.wait)
        finally:
            if sys.exc_info()[0] is not None:
                helpers.stop()
        if code in FATAL:
            helpers.stop()
        codes = [code]
        for helper, helper_code in helpers.wait():
            if helper_code not in (EXIT_OK, EXIT_FAILURES):
                console.error(failure_text(helper, helper_code))
            codes.append(helper_code)
        return worst(codes)


def report_skipped(console: Console, survey: Any) -> None:
    """Every entry of the corpus that was not read, with its reason, and every warning."""
    for skip in survey.skipped:
        console.say(f"skipped {skip.source}: {skip.reason}")
    for warning in survey.warnings:
        console.say(f"warning: {warning}")


def _slug(title: str) -> str:
    from llmxmr.ids import slugify

    return slugify(title) or "survey"


def cmd_resume(args: argparse.Namespace, console: Console) -> int:
    from llmxmr.environment import check_database_path, check_output_folder
    from llmxmr.state.context import check_ranges

    overrides = overrides_from(args)
    check_ranges(overrides)  # a bad value is a usage error even when the thread needs no model call
    db_path = _existing_db(args.db, console)
    if db_path is None:
        return EXIT_USAGE
    out = Path(args.out).expanduser().resolve()
    check_output_folder(out)
    check_database_path(db_path)
    return _execute(console, db_path, out, args.thread, None, None, overrides, wait=args.wait)


def _existing_db(value: str, console: Console) -> Path | str | None:
    """The --db of a run that exists: a postgresql:// URL as given, or a SQLite file that is there."""
    from llmxmr.runs import db_target

    db_path = db_target(value)
    if isinstance(db_path, Path) and not db_path.is_file():
        console.error(f"no database at {db_path}. Fix: pass --db the runs.sqlite the run printed (default OUTDIR/runs.sqlite)")
        return None
    return db_path


def cmd_update(args: argparse.Namespace, console: Console) -> int:
    from llmxmr.state.context import check_ranges

    overrides = overrides_from(args)
    check_ranges(overrides)
    db_path = _existing_db(args.db, console)
    if db_path is None:
        return EXIT_USAGE
    if not args.add and not args.remove:
        console.error("nothing to update: give --add JSONL|DIR (documents to add) and/or --remove ID ...")
        return EXIT_USAGE
    update: dict[str, Any] = {"remove": list(args.remove), "refine": args.refine}
    if args.add:  # absolute: a resumed update reads it again, maybe from another folder
        update["add_path"] = str(Path(args.add).expanduser().resolve())
    return _execute(console, db_path, Path(args.out).expanduser().resolve(), args.thread, None, None, overrides,
                    wait=args.wait, update=update)


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    """The versions of a thread's survey (each update is a new one), or one version written out again."""
    from llmxmr.runs import graph_for, open_database, versions, write_result

    db_path = _existing_db(args.db, console)
    if db_path is None:
        return EXIT_USAGE
    with open_database(db_path) as db:
        found = versions(graph_for(db), args.thread)
    if not found:
        console.error(f"thread {args.thread} has no finished version in {db_path}")
        return EXIT_USAGE
    if args.version is None:  # one line per version, on stdout
        for v in found:
            entry = next((e for e in v.values.get("changelog") or [] if e.get("version") == v.number), None)
            docs = (entry or {}).get("documents") or {}
            change = (f"+{len(docs.get('added') or [])} -{len(docs.get('removed') or [])} documents, "
                      f"{len((entry.get('sections') or {}).get('rewritten') or [])} sections rewritten"
                      if entry else "first run")
            sys.stdout.write(f"version {v.number}  saved {v.created_at}  {len(v.values.get('paper_refs') or [])} "
                             f"documents  {len(v.values.get('references') or [])} references  {change}\n")
        return EXIT_OK
    chosen = next((v for v in found if v.number == args.version), None)
    if chosen is None:
        console.error(f"thread {args.thread} has no version {args.version}; its versions: "
                      + ", ".join(str(v.number) for v in found))
        return EXIT_USAGE
    if args.out is None:
        sys.stdout.write(chosen.values["article"].rstrip("\n") + "\n")
        return EXIT_OK
    md, js, _ = write_result(chosen.values, Path(args.out).expanduser().resolve())
    console.say(f"wrote version {chosen.number} of thread {args.thread} to {md} and {js}")
    return EXIT_OK


def corpus_plans(corpus: Path, settings: Any, title: str | None = None, sections: int | None = None,
                 console: Console | None = None) -> list[Any]:
    """One (title, Plan, tokens, chunks, title tokens) per survey of the corpus; skipped files are listed on
    `console`."""
    from llmxmr.corpus import load_surveys
    from llmxmr.models.tokens import ensure_tiktoken_offline

    ensure_tiktoken_offline()
    plans = []
    for survey in load_surveys(corpus, title=title, follow_links=settings.follow_links):
        if console is not None:
            report_skipped(console, survey)
        plans.append((survey.title, *plan_of(survey, settings, sections)))
    return plans


def plan_of(survey: Any, settings: Any, sections: int | None = None) -> tuple[Any, list[int], list[int], list[int]]:
    """The plan of one survey (offline token counts, chunks and title lengths as the run makes them), with
    its counts. Chunk bounds, not chunk texts: a huge document is never copied whole."""
    from llmxmr.limits import chunk_bounds
    from llmxmr.models.tokens import count_tokens
    from llmxmr.plan import estimate

    tokens = [count_tokens(d.text) for d in survey.documents]
    chunks = [len(chunk_bounds(d.text, settings)) for d in survey.documents]
    titles = [count_tokens(d.title) for d in survey.documents]
    return estimate(settings, tokens, chunks, sections=sections, title_tokens=titles), tokens, chunks, titles


def _stdout_console() -> Console:
    """A Console whose output goes to stdout: a plan (and the files it would skip) is the command's result."""
    from rich.console import Console as RichConsole

    listing = Console(0, False)
    listing.out = RichConsole()
    return listing


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    from llmxmr.state.context import resolve_settings

    if args.update is not None:
        return cmd_plan_update(args, console)
    if args.corpus is None or args.db or args.add or args.remove:
        console.error("plan takes a corpus (a fresh run), or --update THREAD --db PATH with --add/--remove "
                      "(an update)")
        return EXIT_USAGE
    settings = resolve_settings(overrides_from(args))
    listing = _stdout_console()
    for title, plan, tokens, _, _ in corpus_plans(Path(args.corpus).expanduser().resolve(), settings, args.title,
                                               args.sections, listing):
        _print_plan(listing, args, plan,
                    f"plan: {title} ({_count(plan.papers, 'paper')}, {_count(sum(tokens), 'token')}, "
                    f"~{_count(plan.sections, 'section')}, {settings.mode} mode, up to {_count(plan.blocks, 'block')})",
                    "Upper bounds: refinement may stop early (stop rules, budgets); tokens are estimates.",
                    batch=settings.batch_stages)
    return EXIT_OK


def _print_plan(console: Console, args: argparse.Namespace, plan: Any, title: str, note: str,
                batch: frozenset[str] = frozenset()) -> None:
    from rich.table import Table

    from llmxmr.core.prompt_cache import BATCH_PRICE
    from llmxmr.plan import stage_cost

    priced = args.price_in is not None or args.price_out is not None or args.price_cached is not None
    pin, pout, pcached = args.price_in or 0.0, args.price_out or 0.0, args.price_cached
    table = Table(title=title)
    cols = ["stage", "calls", "prompt tok", "cached tok", "completion tok"] + (["$"] if priced else [])
    for col in cols:
        table.add_column(col, justify="left" if col == "stage" else "right")
    for stage, sp in plan.stages.items():
        row = [stage, str(sp.calls), str(sp.prompt_tokens), str(sp.cached_tokens), str(sp.completion_tokens)]
        if priced:
            row.append(f"{stage_cost(sp, pin, pout, pcached, batched=stage in batch):.4f}")
        table.add_row(f"{stage} (batch)" if stage in batch else stage, *row[1:])
    total = ["total", str(plan.calls), str(plan.prompt_tokens), str(plan.cached_tokens), str(plan.completion_tokens)]
    table.add_row(*(total + ([f"{plan.cost(pin, pout, pcached, batch):.4f}"] if priced else [])), style="bold")
    console.out.print(table)
    batched = [stage for stage in plan.stages if stage in batch]
    console.out.print(note + " Cached tok: prompt tokens a provider with prompt caching (OpenAI's rule) serves from its "
                      "cache" + ("; $ bills them at --price-cached." if pcached is not None else
                                 "; give --price-cached to bill them at the cached price.")
                      + (f" Batch API stages ({', '.join(batched)}): $ at {BATCH_PRICE:.0%} of the prices, without a "
                         "cache discount." if batched and priced else ""),
                      markup=False, highlight=False)


def cmd_plan_update(args: argparse.Namespace, console: Console) -> int:
    """`llmxmr plan --update THREAD`: what an update with refine=never would cost, from the thread's final
    outline and digests and the documents it adds; checked as `llmxmr update` checks it, no model call."""
    from llmxmr import run_store
    from llmxmr.citations import find_citations
    from llmxmr.core.changes import evidence_by_section, expected_rewrites
    from llmxmr.core.tree import section_ids
    from llmxmr.limits import chunk_bounds
    from llmxmr.models.tokens import count_tokens, ensure_tiktoken_offline
    from llmxmr.plan import estimate_update
    from llmxmr.runs import graph_for, open_database, saved_settings, status
    from llmxmr.state.context import apply_overrides, check_ranges
    from llmxmr.updates import UpdateError, check_finished, check_overrides, plan_update

    if args.corpus is not None or not args.db:
        console.error("plan --update THREAD takes --db PATH (the thread's database) and no corpus")
        return EXIT_USAGE
    overrides = overrides_from(args)
    check_ranges(overrides)
    db_path = _existing_db(args.db, console)
    if db_path is None:
        return EXIT_USAGE
    request: dict[str, Any] = {"remove": list(args.remove), "refine": "never"}
    if args.add:
        request["add_path"] = str(Path(args.add).expanduser().resolve())
    ensure_tiktoken_offline()
    with open_database(db_path) as db:
        values = status(graph_for(db), {"configurable": {"thread_id": args.update}}).values
        try:
            check_finished(values, args.update, f"llmxmr resume {args.update} --db {db_path}")
            saved = saved_settings(db, values, need_base_url=False)
            check_overrides(saved.model_dump(), overrides)
            settings = apply_overrides(saved, overrides)
            plan = plan_update(request, values["paper_refs"], settings.follow_links)
        except UpdateError as exc:
            console.error(str(exc))
            return EXIT_USAGE
        run_id, key = values["run_id"], values["final_key"]
        outline = run_store.get_outline(db.store, run_id, key)
        digests = run_store.get_digests(db.store, run_id, key, [r["paper_id"] for r in values["paper_refs"]])
        removed = {d["paper_id"] for d in plan.removed}
        cites = {sid: sorted(set(find_citations(run_store.get_section(db.store, run_id, ref))) & removed)
                 for sid, ref in (values.get("sections") or {}).items()}
    per_paper = sum(sum(1 for t in d.sections.values() if t.strip()) for d in digests) / max(1, len(digests))
    rewrite = expected_rewrites(outline, evidence_by_section(digests), cites, removed, len(plan.added), per_paper)
    sections = len(section_ids(outline))
    tokens = [count_tokens(d.text) for d in plan.added]
    chunks = [len(chunk_bounds(d.text, settings)) for d in plan.added] if settings.mode == "default" else None
    for doc in plan.ignored:
        console.say(f"ignored {doc['paper_id']} ({doc['title']}): {doc['reason']}")
    estimate = estimate_update(settings, tokens, chunks, len(values["paper_refs"]) - len(removed) + len(plan.added),
                               sections, rewrite)
    version = int(values.get("version") or 1)
    _print_plan(_stdout_console(), args, estimate,
                f"plan: update of thread {args.update} to version {version + 1} ({len(plan.added)} added, "
                f"{len(removed)} removed, ~{rewrite} of {sections} sections rewritten, refine=never)",
                "Estimates: the sections to rewrite are known once the added documents are digested; "
                "refine=auto adds at most the first layer of one refinement block, always one block.")
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    """"1 paper", "4 papers": counts in messages read as English."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def check_budget(settings: Any, corpus: Path, title: str | None) -> None:
    """A budget too small for any article is a usage error before any paid call."""
    from llmxmr.plan import minimum_calls, minimum_tokens
    from llmxmr.state.context import SettingsError

    if settings.max_calls is None and settings.max_total_tokens is None:
        return
    for name, plan, tokens, chunks, titles in corpus_plans(corpus, settings, title):
        need_calls = minimum_calls(settings, tokens, chunks, titles)
        need_tokens = minimum_tokens(settings, tokens, chunks, titles)
        if settings.max_calls is not None and settings.max_calls < need_calls:
            raise SettingsError(
                f"max_calls={settings.max_calls} is too small for any article of {name!r}: reading, one outline "
                f"and writing need about {need_calls} calls (a full run about {plan.calls}; see `llmxmr plan`). "
                f"Fix: --set max_calls={need_calls} or more")
        if settings.max_total_tokens is not None and settings.max_total_tokens < need_tokens:
            raise SettingsError(
                f"max_total_tokens={settings.max_total_tokens} is too small for any article of {name!r}: reading, "
                f"one outline and writing need about {need_tokens} tokens (a full run about "
                f"{plan.prompt_tokens + plan.completion_tokens}; see `llmxmr plan`). "
                f"Fix: --set max_total_tokens={need_tokens} or more")


def cmd_settings() -> int:
    from rich.console import Console as RichConsole
    from rich.table import Table

    from llmxmr.state.context import effective_defaults

    table = Table(title="llmxmr settings (--set FIELD=VALUE); the defaults each mode uses")
    for col in ("field", "mode=default", "mode=reference", "description"):
        table.add_column(col)
    for row in effective_defaults():
        table.add_row(*row)
    RichConsole().print(table)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from llmxmr.corpus import CorpusError
    from llmxmr.environment import EnvironmentProblem
    from llmxmr.models.errors import ModelSetupError
    from llmxmr.postgres import DatabaseError
    from llmxmr.state.context import SettingsError

    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # --processes starts helpers with the same command
    if args.command == "settings":
        return cmd_settings()
    if args.command == "eval":
        from llmxmr.eval.command import cmd_eval

        return cmd_eval(args)
    os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
    with Console(args.verbose, args.quiet) as console:
        if args.command in ("run", "resume", "update"):
            console.prices = prices_of(args)
        try:
            if args.command == "run":
                return cmd_run(args, console)
            if args.command == "plan":
                return cmd_plan(args, console)
            if args.command == "update":
                return cmd_update(args, console)
            if args.command == "show":
                return cmd_show(args, console)
            return cmd_resume(args, console)
        except (CorpusError, SettingsError, ModelSetupError, DatabaseError, EnvironmentProblem) as exc:
            console.error(str(exc))
            return EXIT_USAGE
        except KeyboardInterrupt:
            console.error("interrupted")
            return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
