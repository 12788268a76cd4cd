"""`llmxmr run/resume --review-outline`: the outline review on the command line.

When a thread waits at the `review_outline` interrupt (nodes/review.py), the outline goes to
OUTDIR/outline-review.json (edit this one) and OUTDIR/outline-review.md (a readable view). On a terminal the
CLI waits for the person to edit the file and press Enter, then resumes with `Command(resume=<the file>)`;
an invalid edit is reported and waited for again. Without a terminal it stops with exit code 1 and prints
the exact `llmxmr resume` command, which reads the edited file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REVIEW_JSON = "outline-review.json"
REVIEW_MD = "outline-review.md"
PROBLEMS_TXT = "outline-review-problems.txt"
EXIT_WAITING = 1  # the run is not finished: the resume command is printed


def add_flag(p: Any) -> None:
    p.add_argument("--review-outline", action="store_true", default=None,
                   help=f"pause before writing: the outline goes to OUT/{REVIEW_JSON} for you to edit, then the run "
                        "goes on (on a terminal after Enter; otherwise resume with the printed command)")


def pending_review(graph: Any, thread: str) -> dict[str, Any] | None:
    """The payload of the thread's pending outline-review interrupt, if it waits at one."""
    snapshot = graph.get_state({"configurable": {"thread_id": thread}})
    for task in snapshot.tasks:
        for item in task.interrupts:
            value = getattr(item, "value", None)
            if isinstance(value, dict) and value.get("kind") == "review_outline":
                return value
    return None


def write_review_files(out: Path, payload: dict[str, Any]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / REVIEW_JSON, out / REVIEW_MD
    js.write_text(json.dumps(payload["outline"], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    note = ["<!-- A view of outline-review.json: edit the JSON file, not this one. -->", ""]
    problems = payload.get("problems") or []
    if problems:
        note += ["**Problems of the last edit (fix them in outline-review.json):**", ""]
        note += [f"- {p}" for p in problems] + [""]
    md.write_text("\n".join(note) + payload["markdown"], encoding="utf-8")
    problems_file = out / PROBLEMS_TXT
    if problems:
        problems_file.write_text("\n".join(problems) + "\n", encoding="utf-8")
    elif problems_file.exists():
        problems_file.unlink()
    return js, md


def read_edit(out: Path) -> Any:
    """The resume value: the edited outline (a dict), or the file's raw text when it is not JSON (the review node
    then answers with the parse error)."""
    text = (out / REVIEW_JSON).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        return text


def resume_input(graph: Any, thread: str, out: Path) -> Any:
    """What `llmxmr resume` feeds the graph: the edited outline when the thread waits at the review and the
    file is there, else None (continue where it stopped)."""
    if pending_review(graph, thread) is not None and (out / REVIEW_JSON).is_file():
        from langgraph.types import Command

        return Command(resume=read_edit(out))
    return None


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def settle(console: Any, graph: Any, thread: str, out: Path, hint: str, drive: Callable[[Any], None], *,
           interactive: bool | None = None, ask: Callable[[str], str] | None = None) -> int | None:
    """While the thread waits at the outline review: write the files and, on a terminal, wait for Enter and resume
    (again after an invalid edit). None once the thread no longer waits; EXIT_WAITING without a terminal."""
    interactive = _stdin_is_terminal() if interactive is None else interactive
    while True:
        payload = pending_review(graph, thread)
        if payload is None:
            (out / PROBLEMS_TXT).unlink(missing_ok=True)  # the last edit was accepted
            return None
        js, md = write_review_files(out, payload)
        problems = payload.get("problems") or []
        if problems:
            console.error("the edited outline has problems:\n" + "\n".join(f"  - {p}" for p in problems))
        if not interactive:
            console.error(f"the outline waits for your review: edit {js} (readable view: {md}), then resume with:\n"
                          f"  {hint}")
            return EXIT_WAITING
        progress = getattr(console, "progress", None)
        if progress is not None:
            progress.stop()
        try:
            console.out.print(f"The outline is in {js} (readable view: {md}).")
            (ask or input)("Edit it (or leave it as it is) and press Enter to write the survey, Ctrl-C to stop: ")
        finally:
            if progress is not None:
                progress.start()
        from langgraph.types import Command

        drive(Command(resume=read_edit(out)))
