"""The scripted server in a process of its own, for tests whose point is timing between client and server.

In the test's own process the server's threads share the interpreter lock with the pipeline's: on a busy
machine a reply the server has finished can then sit behind the client's work until the client's time-out
has passed, a race a real server (another process, another machine) hardly ever loses. Here the server only
competes with the client for the CPU, as a local llama.cpp server would.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

START_TIMEOUT = 60.0  # seconds for the child to import the package and bind its port


def _serve(conn: Connection, options: dict[str, Any]) -> None:
    from llmxmr.testing.scripted_server import scripted_server

    with scripted_server(**options) as server:
        conn.send(server.base_url)
        while True:
            command = conn.recv()
            if command == "log":
                conn.send(server.chat_requests)
            else:  # "stop"
                conn.send(None)
                return


class ServerProcess:
    def __init__(self, conn: Connection, base_url: str) -> None:
        self._conn = conn
        self.base_url = base_url

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The server's log of chat requests so far (a copy), as `StubOpenAIServer.chat_requests`."""
        self._conn.send("log")
        return self._conn.recv()


@contextmanager
def scripted_server_process(**options: Any) -> Iterator[ServerProcess]:
    """`scripted_server(**options)` (only picklable options: slots, work, models, report_slots) served from
    a spawned child process for the length of the block."""
    context = multiprocessing.get_context("spawn")  # no copy of the test process's threads and locks
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, options), name="scripted-server", daemon=True)
    process.start()
    try:
        if not parent.poll(START_TIMEOUT):
            raise RuntimeError(f"the scripted server process did not start within {START_TIMEOUT:g} s")
        yield ServerProcess(parent, parent.recv())
        parent.send("stop")
        parent.recv()
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
