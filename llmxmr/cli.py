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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FAILURES = 0, 1, 2, 3


def _settings_epilog() -> str:
    from llmxmr.state.context import effective_defaults

    lines = ["settings for --set FIELD=VALUE (VALUE is JSON when it parses, else a string; defaults: mode=default"
             " / mode=reference):"]
    lines += [f"  {name} ({d if d == r else f'{d} / {r}'}): {desc}" for name, d, r, desc in effective_defaults()]
    return "\n".join(lines)


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
    run.add_argument("--db", help="SQLite file of checkpoints and store (default OUT/runs.sqlite)")
    run.add_argument("--title", help="survey title for a folder corpus")
    run.add_argument("--wait", action="store_true", help="when another process works the thread, wait for it")
    _add_model_flags(run)
    res = sub.add_parser("resume", help="continue a stopped run with the settings it started with")
    res.add_argument("thread", help="thread id printed when the run stopped")
    res.add_argument("--db", required=True, help="SQLite file of the run")
    res.add_argument("-o", "--out", required=True, help="output folder")
    res.add_argument("--wait", action="store_true", help="when another process works the thread, wait for it")
    _add_model_flags(res)
    pl = sub.add_parser("plan", help="expected calls, tokens (and money) per stage, before paying")
    pl.add_argument("corpus", help="the corpus a `run` would read")
    pl.add_argument("--mode", choices=["default", "reference"])
    pl.add_argument("--title", help="survey title for a folder corpus")
    pl.add_argument("--sections", type=int, help="expected sections of the outline (default: from the corpus size)")
    pl.add_argument("--price-in", type=float, help="$ per million prompt tokens")
    pl.add_argument("--price-out", type=float, help="$ per million completion tokens")
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
                        ("review_outline", "review_outline"), ("follow_links", "follow_links")):
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


# Progress events whose count the plan knows up front (event stage -> plan stage), for totals that events
# do not carry themselves. Refinement stages are upper bounds: their stop rules may end them early.
PLAN_TOTALS = {"map": "map", "skeleton": "skeleton", "merge_skeleton": "merge_skeleton", "digest": "digest",
               "feedback": "feedback", "convolution": "modify", "entropy_score": "judge", "refine": "critique"}
HEARTBEAT_SECONDS = 60.0  # without a terminal, at least one line this often while model calls are in flight


class Console:
    """Progress on a terminal (rich bars); without one, a line per finished step and a heartbeat while
    model calls are in flight; only errors and the summary with -q. Retries and back-offs (the `llmxmr`
    logger) are printed as they happen, except with -q."""

    def __init__(self, verbose: int, quiet: bool) -> None:
        import time

        from rich.console import Console as RichConsole

        self.out = RichConsole(stderr=True)
        self.verbose, self.quiet = verbose, quiet
        self.live = self.out.is_terminal and not quiet
        self.lines = not self.out.is_terminal and not quiet or (bool(verbose) and not quiet)
        self.counts: dict[str, int] = {}
        self.totals: dict[str, int] = {}  # per event stage: from its own events, else from the plan
        self.last_stage = ""
        self.progress = None
        self.tasks: dict[str, Any] = {}
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._log_handler: Any = None

    def __enter__(self) -> Console:
        import logging

        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.out)
            self.progress.start()
        elif self.lines:
            self._heartbeat = threading.Thread(target=self._beat, name="llmxmr-heartbeat", daemon=True)
            self._heartbeat.start()
        if not self.quiet:
            console = self

            class _Say(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    console.say(record.getMessage())

            self._log_handler = _Say(logging.INFO)
            logging.getLogger("llmxmr").addHandler(self._log_handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        import logging

        self.stop_live()
        self._stop.set()
        if self._log_handler is not None:
            logging.getLogger("llmxmr").removeHandler(self._log_handler)

    def stop_live(self) -> None:
        """Stop the bars before the final summary is printed, so nothing redraws below it."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def plan_totals(self, plan: Any) -> None:
        """Totals of the stages whose events carry none, from `llmxmr plan`'s estimate of this run."""
        for event_stage, plan_stage in PLAN_TOTALS.items():
            planned = plan.stages.get(plan_stage)
            if planned is not None and planned.calls:
                self.totals.setdefault(event_stage, planned.calls)

    def _elapsed(self) -> str:
        import time

        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def _count(self, stage: str) -> str:
        total = self.totals.get(stage)
        return f"{self.counts.get(stage, 0)}/{total}" if total else str(self.counts.get(stage, 0))

    def _beat(self) -> None:
        from llmxmr.models.metering import requests_in_flight

        while not self._stop.wait(HEARTBEAT_SECONDS):
            flying = requests_in_flight()
            if flying:
                stage = self.last_stage or "starting"
                self.say(f"[{self._elapsed()}] working: {stage} {self._count(stage)} done, "
                         f"{flying} model call(s) in flight")

    def event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "artifact":  # outline-b<block>.md, entropy.json: written to OUTDIR as the run goes
            from llmxmr.artifacts import write_artifact

            write_artifact(getattr(self, "outdir", None), event)
            return
        stage = str(event.get("stage", "?"))
        done = int(event.get("done", 0) or 0)
        self.counts[stage] = self.counts.get(stage, 0) + done
        if event.get("total"):
            self.totals[stage] = int(event["total"])
        if self.counts[stage] > self.totals.get(stage, self.counts[stage]):
            self.totals[stage] = self.counts[stage]  # a plan's estimate was low: never show 9/8
        self.last_stage = stage
        info = " ".join(f"{k}={v}" for k, v in event.items() if k in ("block", "layer", "best", "score", "entropy", "stop_reason") and v is not None)
        if self.progress is not None:
            if stage not in self.tasks:
                self.tasks[stage] = self.progress.add_task(stage, total=self.totals.get(stage), info="")
            self.progress.update(self.tasks[stage], completed=self.counts[stage], info=info,
                                 **({"total": self.totals[stage]} if self.totals.get(stage) else {}))
        elif self.lines and (done or info):
            from llmxmr.models.metering import requests_in_flight

            self.say(f"[{self._elapsed()}] {stage} {self._count(stage)} done, {requests_in_flight()} in flight"
                     + (f" {info}" if info else ""))

    def say(self, text: str) -> None:
        # File names and titles come from outside: no markup, no terminal escapes.
        if not self.quiet:
            self.out.print(printable(text), markup=False, highlight=False, soft_wrap=True)  # a log line stays one line

    def error(self, text: str) -> None:
        # soft_wrap: a printed command (the resume hint) must stay one line to copy and paste.
        from rich.markup import escape

        self.out.print(f"[bold red]error:[/] {escape(printable(text))}", highlight=False, soft_wrap=True)


_CONTROL = None


def printable(text: str) -> str:
    """`text` with control characters (ESC sequences, bells, carriage returns) shown as escapes: a file name
    cannot move the cursor, recolour or retitle the terminal."""
    import re

    global _CONTROL
    if _CONTROL is None:
        _CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def usage_table(report: Any) -> Any:
    from rich.table import Table

    table = Table(title="usage per stage")
    for col in ("stage", "calls", "cached", "retries", "repairs", "failures", "prompt tok", "completion tok"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for stage, u in report.usage.items():
        table.add_row(stage, str(u.calls), str(u.cached), str(u.retries), str(u.repairs), str(u.failures),
                      str(u.prompt_tokens), str(u.completion_tokens))
    return table


def _resume_hint(thread: str, db: Path, out: Path) -> str:
    from shlex import quote

    return f"llmxmr resume {quote(thread)} --db {quote(str(db))} -o {quote(str(out))}"


@contextmanager
def _stop_on_ctrl_c(console: Console, hint: str) -> Iterator[None]:
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
    failures = serious_failures(values["report"])
    summary = f"stop reason: {report.stop_reason}\nwrote {md} and {js}"
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


def _execute(console: Console, db_path: Path, out: Path, thread: str, start: dict[str, Any] | None,
             context: Any, overrides: dict[str, Any], wait: bool = False) -> int:
    """Work one thread while holding its lock: two processes never work (and pay for) the same thread."""
    from llmxmr.thread_lock import ThreadBusyError, hold_thread

    try:
        with hold_thread(db_path, thread, wait=wait, on_wait=console.say):
            return _execute_locked(console, db_path, out, thread, start, context, overrides)
    except ThreadBusyError as exc:
        console.error(str(exc))
        return EXIT_USAGE


def _execute_locked(console: Console, db_path: Path, out: Path, thread: str, start: dict[str, Any] | None,
                    context: Any, overrides: dict[str, Any]) -> int:
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

    hint = _resume_hint(thread, db_path, out)
    console.outdir = out  # where artifact events go
    with open_database(db_path) as db, _stop_on_ctrl_c(console, hint):
        graph = graph_for(db)
        st = status(graph, {"configurable": {"thread_id": thread}})
        try:
            if st.finished:
                console.say(f"thread {thread} is already complete: writing its outputs again (no model calls)")
                return _finish(console, st.values, out)
            if st.exists:
                settings = override_settings(db, st.values, overrides) if overrides else None
                if settings is None:
                    from llmxmr.runs import saved_settings

                    settings = saved_settings(db, st.values)
                console.say(f"resuming thread {thread}")
                check_models(settings)
                drive(graph, resume_input(graph, thread, out), config_for(thread, settings), on_event=console.event)
            else:
                if start is None:
                    console.error(f"no run with thread id {thread} in {db_path}")
                    return EXIT_USAGE
                settings = resolve_settings(context)
                check_models(settings)
                console.say(f"thread {thread}: {settings.mode} mode, model {settings.model}")
                drive(graph, start, config_for(thread, settings), context=context, on_event=console.event)
            waiting = settle(console, graph, thread, out, hint,  # --review-outline: the thread waits for a person
                             lambda cmd: drive(graph, cmd, config_for(thread, settings), on_event=console.event))
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
        except (CorpusError, SettingsError) as exc:
            console.error(str(exc))
            return EXIT_USAGE
        except ModelSetupError as exc:
            console.error(f"{exc}\nAfter fixing it, resume with:\n  {hint}" if st.exists else str(exc))
            return EXIT_USAGE
        except (ProviderError, ContextOverflowError, BudgetExceededError, LookupError) as exc:
            console.error(f"{exc}\nProgress is saved. Resume with:\n  {hint}")
            return EXIT_ERROR
        except Exception as exc:  # the disk filled up mid-run, or an unexpected bug: still say how to resume
            problem = storage_problem(exc, db_path) if isinstance(exc, (sqlite3.Error, OSError)) else None
            if problem is not None:
                console.error(f"{problem}\nProgress is saved. Resume with:\n  {hint}")
                return EXIT_ERROR
            console.error(f"{type(exc).__name__}: {exc}\nProgress is saved. Resume with:\n  {hint}")
            if console.verbose:
                raise
            return EXIT_ERROR


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from llmxmr.corpus import load_surveys
    from llmxmr.environment import check_database_path, check_output_folder
    from llmxmr.runs import CONNECTION_SETTINGS, thread_id_for
    from llmxmr.state.context import Context, resolve_settings

    overrides = overrides_from(args)
    settings = resolve_settings(overrides)
    context = Context(**overrides)
    corpus = Path(args.corpus).expanduser().resolve()
    surveys = load_surveys(corpus, title=args.title, follow_links=settings.follow_links)
    check_budget(settings, corpus, args.title)
    out = Path(args.out).expanduser().resolve()
    db_path = Path(args.db).expanduser().resolve() if args.db else out / "runs.sqlite"
    check_output_folder(out)
    check_database_path(db_path)
    connection = {k: v for k, v in overrides.items() if k in CONNECTION_SETTINGS}
    worst = EXIT_OK
    for index, survey in enumerate(surveys):
        report_skipped(console, survey)
        if not console.quiet:
            console.plan_totals(plan_of(survey, settings)[0])
        folder = out if len(surveys) == 1 else out / f"{index + 1:02d}-{_slug(survey.title)}"
        thread = args.thread if args.thread and len(surveys) == 1 else (
            f"{args.thread}-{index}" if args.thread else thread_id_for(corpus, index, settings, args.title))
        start = {"corpus_path": str(corpus), "survey_index": index, **({"title": args.title} if args.title else {})}
        code = _execute(console, db_path, folder, thread, start, context, connection, wait=args.wait)
        worst = code if code in (EXIT_ERROR, EXIT_USAGE) else max(worst, code)
        if code in (EXIT_ERROR, EXIT_USAGE):
            break
    return worst


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
    db_path = Path(args.db).expanduser().resolve()
    if not db_path.is_file():
        console.error(f"no database at {db_path}. Fix: pass --db the runs.sqlite the run printed (default OUTDIR/runs.sqlite)")
        return EXIT_USAGE
    out = Path(args.out).expanduser().resolve()
    check_output_folder(out)
    check_database_path(db_path)
    return _execute(console, db_path, out, args.thread, None, None, overrides, wait=args.wait)


def corpus_plans(corpus: Path, settings: Any, title: str | None = None, sections: int | None = None,
                 console: Console | None = None) -> list[Any]:
    """One Plan per survey of the corpus (token counts offline, chunks as the run would make them)."""
    from llmxmr.corpus import load_surveys

    plans = []
    for survey in load_surveys(corpus, title=title, follow_links=settings.follow_links):
        if console is not None:
            report_skipped(console, survey)
        plans.append((survey.title, *plan_of(survey, settings, sections)))
    return plans


def plan_of(survey: Any, settings: Any, sections: int | None = None) -> tuple[Any, list[int], list[int]]:
    """The plan of one survey (offline token counts, chunks as the run makes them), with its counts."""
    from llmxmr.limits import chunks_of
    from llmxmr.models.tokens import count_tokens, ensure_tiktoken_offline
    from llmxmr.plan import estimate

    ensure_tiktoken_offline()
    tokens = [count_tokens(d.text) for d in survey.documents]
    chunks = [len(chunks_of(d.text, settings)) for d in survey.documents]
    return estimate(settings, tokens, chunks, sections=sections), tokens, chunks


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    """The plan goes to stdout (it is the command's output); skipped files are listed with it."""
    from rich.console import Console as RichConsole
    from rich.table import Table

    from llmxmr.state.context import resolve_settings

    out = RichConsole()
    settings = resolve_settings(overrides_from(args))
    listing = Console(0, False)
    listing.out = out
    for title, plan, tokens, _ in corpus_plans(Path(args.corpus).expanduser().resolve(), settings, args.title,
                                               args.sections, listing):
        priced = args.price_in is not None or args.price_out is not None
        pin, pout = args.price_in or 0.0, args.price_out or 0.0
        table = Table(title=f"plan: {title} ({_count(plan.papers, 'paper')}, {_count(sum(tokens), 'token')}, "
                            f"~{_count(plan.sections, 'section')}, {settings.mode} mode, up to {_count(plan.blocks, 'block')})")
        cols = ["stage", "calls", "prompt tok", "completion tok"] + (["$"] if priced else [])
        for col in cols:
            table.add_column(col, justify="left" if col == "stage" else "right")
        for stage, sp in plan.stages.items():
            row = [stage, str(sp.calls), str(sp.prompt_tokens), str(sp.completion_tokens)]
            if priced:
                row.append(f"{(sp.prompt_tokens * pin + sp.completion_tokens * pout) / 1e6:.4f}")
            table.add_row(*row)
        total = ["total", str(plan.calls), str(plan.prompt_tokens), str(plan.completion_tokens)]
        table.add_row(*(total + ([f"{plan.cost(pin, pout):.4f}"] if priced else [])), style="bold")
        out.print(table)
        out.print("Upper bounds: refinement may stop early (stop rules, budgets); tokens are estimates.",
                  markup=False, highlight=False)
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
    for name, plan, tokens, chunks in corpus_plans(corpus, settings, title):
        need_calls = minimum_calls(settings, tokens, chunks)
        need_tokens = minimum_tokens(settings, tokens, chunks)
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
    from llmxmr.state.context import SettingsError

    args = parser().parse_args(argv)
    if args.command == "settings":
        return cmd_settings()
    if args.command == "eval":
        from llmxmr.eval.command import cmd_eval

        return cmd_eval(args)
    os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
    with Console(args.verbose, args.quiet) as console:
        try:
            if args.command == "run":
                return cmd_run(args, console)
            if args.command == "plan":
                return cmd_plan(args, console)
            return cmd_resume(args, console)
        except (CorpusError, SettingsError, ModelSetupError, EnvironmentProblem) as exc:
            console.error(str(exc))
            return EXIT_USAGE
        except KeyboardInterrupt:
            console.error("interrupted")
            return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
