"""What `llmxmr` prints while it works and after: progress (rich bars on a terminal; otherwise a line per
finished step and a heartbeat), errors without terminal escapes, the usage table and the bill."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

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
        self.prices: tuple[float, float, float | None] | None = None  # --price-in/-out/-cached of run, resume
        self.live = self.out.is_terminal and not quiet
        self.lines = not self.out.is_terminal and not quiet or (bool(verbose) and not quiet)
        # Per (survey, event stage): several surveys of one job report through one console (`survey` labels
        # them; None for a single survey), each with its own counts and totals.
        self.counts: dict[tuple[str | None, str], int] = {}
        self.totals: dict[tuple[str | None, str], int] = {}  # from the stage's own events, else from the plan
        self.last: tuple[str | None, str] = (None, "")
        self.progress = None
        self.tasks: dict[tuple[str | None, str], Any] = {}  # the bar of each (survey, stage)
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

    def plan_totals(self, plan: Any, survey: str | None = None) -> None:
        """Totals of the stages whose events carry none, from `llmxmr plan`'s estimate of this run."""
        for event_stage, plan_stage in PLAN_TOTALS.items():
            planned = plan.stages.get(plan_stage)
            if planned is not None and planned.calls:
                self.totals.setdefault((survey, event_stage), planned.calls)

    def _elapsed(self) -> str:
        import time

        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def _count(self, key: tuple[str | None, str]) -> str:
        total = self.totals.get(key)
        return f"{self.counts.get(key, 0)}/{total}" if total else str(self.counts.get(key, 0))

    @staticmethod
    def _named(key: tuple[str | None, str]) -> str:
        """A stage, after its survey's label when several surveys share the console."""
        return f"{key[0]} {key[1]}" if key[0] else key[1]

    def _beat(self) -> None:
        from llmxmr.models.metering import requests_in_flight

        while not self._stop.wait(HEARTBEAT_SECONDS):
            flying = requests_in_flight()
            if flying:
                key = self.last if self.last[1] else (None, "starting")
                self.say(f"[{self._elapsed()}] working: {self._named(key)} {self._count(key)} done, "
                         f"{flying} model call(s) in flight")

    def event(self, event: dict[str, Any], outdir: Path | None = None, survey: str | None = None) -> None:
        if event.get("event") == "artifact":  # outline-b<block>.md, entropy.json: written to OUTDIR as the run goes
            from llmxmr.artifacts import write_artifact

            write_artifact(outdir or getattr(self, "outdir", None), event)
            return
        key = (survey, str(event.get("stage", "?")))
        done = int(event.get("done", 0) or 0)
        self.counts[key] = self.counts.get(key, 0) + done
        if event.get("total"):
            self.totals[key] = int(event["total"])
        if self.counts[key] > self.totals.get(key, self.counts[key]):
            self.totals[key] = self.counts[key]  # a plan's estimate was low: never show 9/8
        self.last = key
        info = " ".join(f"{k}={v}" for k, v in event.items() if k in ("block", "layer", "best", "score", "entropy",
                                                                        "stop_reason", "batch", "status") and v is not None)
        if self.progress is not None:
            if key not in self.tasks:
                self.tasks[key] = self.progress.add_task(self._named(key), total=self.totals.get(key), info="")
            self.progress.update(self.tasks[key], completed=self.counts[key], info=info,
                                 **({"total": self.totals[key]} if self.totals.get(key) else {}))
        elif self.lines and (done or info):
            from llmxmr.models.metering import requests_in_flight

            self.say(f"[{self._elapsed()}] {self._named(key)} {self._count(key)} done, {requests_in_flight()} in flight"
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
    # "cached": prompt tokens the provider says it served from its prompt cache (billed at its cached price),
    # shown when the provider reported any (the table must stay readable in 80 columns).
    cached = any(u.cache_read_tokens for u in report.usage.values())
    cols = ["stage", "calls", "cached", "retries", "repairs", "failures", "prompt tok"]
    cols += ["cached tok", "completion"] if cached else ["completion tok"]
    for col in cols:
        table.add_column(col, justify="right" if col != "stage" else "left")
    for stage, u in report.usage.items():
        row = [stage, str(u.calls), str(u.cached), str(u.retries), str(u.repairs), str(u.failures), str(u.prompt_tokens)]
        row += [str(u.cache_read_tokens)] if cached else []
        table.add_row(*row, str(u.completion_tokens))
    return table


def bill_line(usage: dict[str, Any], price_in: float, price_out: float, price_cached: float | None) -> str:
    """The run's money at the given prices: cached prompt tokens (as the provider reported them) at the
    cached price, Batch API answers at the batch price (half). An answer replayed from the durable record is
    counted once in a run (paid once, when first asked; a resumed run counts what the stopped process paid
    for and never saved)."""
    from llmxmr.core.prompt_cache import BATCH_PRICE, cost

    prompt = sum(u.prompt_tokens for u in usage.values())
    cached = sum(u.cache_read_tokens for u in usage.values())
    completion = sum(u.completion_tokens for u in usage.values())
    bp = sum(u.batched_prompt_tokens for u in usage.values())
    bc = sum(u.batched_completion_tokens for u in usage.values())
    batched = cost(bp, bc, price_in=price_in * BATCH_PRICE, price_out=price_out * BATCH_PRICE)
    billed = batched + cost(prompt - bp, completion - bc, price_in=price_in, price_out=price_out,
                            cached_tokens=cached, price_cached=price_cached)
    full = cost(prompt, completion, price_in=price_in, price_out=price_out)
    parts = [f"{cached} of {prompt} prompt tokens served from the provider's prompt cache"
             + (f" at ${price_cached}/M" if price_cached is not None else "; give --price-cached to bill them at the cached price")]
    if bp or bc:
        parts.append(f"{bp + bc} tokens of Batch API answers at {BATCH_PRICE:.0%} of the price")
    return f"cost: ${billed:.4f} ({'; '.join(parts)}; ${full:.4f} at the ordinary price)"
