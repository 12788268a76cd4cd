"""Generate examples/stdlib-concurrency.jsonl: a small, license-clean corpus from CPython docstrings.

One survey line; one paper per standard-library module: the module docstring followed by the docstrings
of its main public classes and functions, capped at ~220 whitespace words (~300 tokens) so the corpus is
cheap enough for CPU models. The output depends only on the Python version (see examples/README.md).

    python scripts/make_example_corpus.py [OUT]
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from pathlib import Path

TITLE = "Concurrency and parallelism in the Python standard library"
WORD_CAP = 220
MODULE_DOC_CAP = 120  # leave room for members when a module docstring is very long (socketserver)
ABSTRACT_CAP = 60

# Module -> its main public names, in the order the library documentation presents them.
MODULES: dict[str, list[str]] = {
    "threading": ["Thread", "Lock", "RLock", "Condition", "Semaphore", "Event", "Timer", "Barrier", "local"],
    "multiprocessing": ["Process", "Pool", "Queue", "Pipe", "Manager", "Lock", "Value", "Array"],
    "concurrent.futures": ["Executor", "ThreadPoolExecutor", "ProcessPoolExecutor", "Future", "wait", "as_completed"],
    "asyncio": ["run", "create_task", "gather", "wait_for", "TaskGroup", "Queue", "Lock", "Event", "Semaphore", "AbstractEventLoop"],
    "queue": ["Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "Empty", "Full"],
    "sched": ["scheduler", "scheduler.enterabs", "scheduler.enter", "scheduler.cancel", "scheduler.run"],
    "subprocess": ["run", "Popen", "CompletedProcess", "check_output", "TimeoutExpired"],
    "selectors": ["BaseSelector", "DefaultSelector", "SelectorKey", "EVENT_READ"],
    "signal": ["signal", "Signals", "alarm", "set_wakeup_fd", "pthread_kill", "getsignal"],
    "contextvars": ["ContextVar", "ContextVar.get", "ContextVar.set", "ContextVar.reset", "Context", "Context.run",
                    "Context.copy", "copy_context", "Token"],  # the C types document their methods only
    "select": ["select", "poll", "epoll", "devpoll", "kqueue"],
    "socketserver": ["BaseServer", "TCPServer", "UDPServer", "ThreadingMixIn", "ForkingMixIn", "BaseRequestHandler", "StreamRequestHandler"],
}


def cap_words(text: str, limit: int) -> tuple[str, bool]:
    """The first `limit` whitespace words of `text`, keeping its line breaks; (text, was_cut)."""
    tokens = re.findall(r"\S+\s*", text)
    if len(tokens) <= limit:
        return text.strip(), False
    return "".join(tokens[:limit]).strip() + " …", True


def member_doc(module: object, name: str) -> str | None:
    obj: object = module
    for attr in name.split("."):  # "scheduler.enter": a method of a documented class
        obj = getattr(obj, attr, None)
    if obj is None or not (inspect.isclass(obj) or callable(obj)):
        return None  # platform-specific names (epoll, kqueue) or constants
    doc = inspect.getdoc(obj)
    return doc.strip() if doc else None


def paper(name: str, members: list[str]) -> dict[str, str]:
    module = importlib.import_module(name)
    module_doc = (inspect.getdoc(module) or "").strip()
    parts = []
    if module_doc:
        parts.append(cap_words(module_doc, MODULE_DOC_CAP)[0])
    for member in members:
        doc = member_doc(module, member)
        if doc:
            parts.append(f"{name}.{member}: {doc}")
    txt, _ = cap_words("\n\n".join(parts), WORD_CAP)
    first_paragraph = (module_doc or txt).split("\n\n")[0]
    abstract, _ = cap_words(" ".join(first_paragraph.split()), ABSTRACT_CAP)
    return {
        "title": f"Python module {name}",
        "abstract": abstract,
        "txt": txt,
        "url": f"https://docs.python.org/3/library/{name}.html",
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "examples" / "stdlib-concurrency.jsonl"
    record = {"title": TITLE, "papers": [paper(name, members) for name, members in MODULES.items()]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out} ({len(record['papers'])} papers) with Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
