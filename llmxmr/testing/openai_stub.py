"""A loopback OpenAI-compatible server for tests: the real ChatOpenAI talks HTTP to a scripted responder.

    with StubOpenAIServer(lambda req: {"content": '{"x": 1}'}) as stub:
        ChatOpenAI(base_url=stub.base_url, api_key="x", model="m").invoke("hi")

The responder receives the request JSON and returns either a reply
    {"content": str, "logprobs": [...]|None, "finish_reason": "stop", "prompt_tokens": n, "completion_tokens": n}
(with "cached_tokens": n, the usage reports them as OpenAI does: `prompt_tokens_details.cached_tokens`)
or a fault {"status": 429, "headers": {...}, "body": {...}}, or {"drop": True} (close the connection);
any of them may carry "delay": seconds (sleep first).

With `slots=N` the server works on at most N chat requests at once, like llama.cpp's server with N parallel
slots: a reply's "delay" is then the work done inside a slot, the others queue, and a request whose client
hung up (a client time-out) is dropped from the queue or cancelled mid-work, as llama.cpp does. Each entry
of `requests` then says whether its work was "completed" or "cancelled". `report_slots` answers GET /props
with `total_slots`, as llama.cpp does.
"""

from __future__ import annotations

import json
import math
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], dict[str, Any]]


def _default_responder(request: dict[str, Any]) -> dict[str, Any]:
    return {"content": "ok"}


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up (a timeout, a killed run) is part of the scenarios, not a server error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class StubOpenAIServer:
    def __init__(self, responder: Responder = _default_responder, *, models: list[str] | None = None,
                 on_delivered: Callable[[dict[str, Any]], None] | None = None, slots: int | None = None,
                 report_slots: bool = False) -> None:
        self.responder = responder
        self.models = models
        self.slots = threading.BoundedSemaphore(slots) if slots else None
        self.props = {"total_slots": slots} if slots and report_slots else None
        # {"seq", "path", "body", "delivered", "written"}: "delivered" is set just before the reply is written
        # (a fast client never sees it unset), "written" once the whole body has been written and flushed.
        self.requests: list[dict[str, Any]] = []
        self.on_delivered = on_delivered  # called with the entry after "written" (kill-and-resume tests)
        # The Batch API (/files, /batches): jobs stay "in_progress" while `batch_hold` is set; a job's lines
        # are answered by `responder` when it is released, except where `batch_line_fault(body)` gives an
        # HTTP status for the line.
        self.batch_api = True  # False: /files and /batches answer 404, as on a server without the Batch API
        self.batch_hold = threading.Event()
        self.batch_line_fault: Callable[[dict[str, Any]], int | None] | None = None
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> StubOpenAIServer:
        self._httpd = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> StubOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # -- request log -----------------------------------------------------------------------------------
    def _log(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            entry = {"seq": len(self.requests), "path": path, "body": body, "delivered": False, "written": False}
            self.requests.append(entry)
            return entry

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    # -- the Batch API ---------------------------------------------------------------------------------
    def _new_file(self, data: bytes, purpose: str) -> dict[str, Any]:
        with self._lock:
            fid = f"file-stub-{len(self.files)}"
            self.files[fid] = data
        return {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": f"{fid}.jsonl", "purpose": purpose, "status": "processed"}

    def _new_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        lines = [json.loads(x) for x in self.files.get(request.get("input_file_id", ""), b"").decode().splitlines()
                 if x.strip()]
        with self._lock:
            bid = f"batch_stub_{len(self.batches)}"
            self.batches[bid] = {"id": bid, "object": "batch", "endpoint": request.get("endpoint"),
                                 "input_file_id": request.get("input_file_id"), "completion_window": "24h",
                                 "status": "in_progress", "created_at": int(time.time()), "output_file_id": None,
                                 "error_file_id": None, "metadata": request.get("metadata"),
                                 "request_counts": {"completed": 0, "failed": 0, "total": len(lines)}, "_lines": lines}
        return self._batch_view(bid)

    def _batch_view(self, bid: str) -> dict[str, Any]:
        return {k: v for k, v in self.batches[bid].items() if not k.startswith("_")}

    def _retrieve_batch(self, bid: str) -> dict[str, Any] | None:
        job = self.batches.get(bid)
        if job is None:
            return None
        if job["status"] == "in_progress" and not self.batch_hold.is_set():
            out, done, failed = [], 0, 0
            for line in job["_lines"]:
                status = self.batch_line_fault(line["body"]) if self.batch_line_fault else None
                if status:
                    failed += 1
                    out.append({"id": f"req-{len(out)}", "custom_id": line["custom_id"], "response": {
                        "status_code": status, "body": {"error": {"message": f"stub line error {status}"}}}, "error": None})
                    continue
                reply = self.responder(line["body"])
                out.append({"id": f"req-{len(out)}", "custom_id": line["custom_id"], "error": None,
                            "response": {"status_code": 200, "body": _completion(line["body"], reply, len(out))}})
                done += 1
            job["output_file_id"] = self._new_file("".join(json.dumps(x) + "\n" for x in out).encode(), "batch_output")["id"]
            job["request_counts"] = {"completed": done, "failed": failed, "total": len(job["_lines"])}
            job["status"] = "completed"
        return self._batch_view(bid)

    @property
    def batch_requests(self) -> list[dict[str, Any]]:
        """POST /batches requests (one per job submitted)."""
        with self._lock:
            return [r for r in self.requests if r["path"].rstrip("/").endswith("/batches")]


def _completion(request: dict[str, Any], reply: dict[str, Any], seq: int) -> dict[str, Any]:
    content = reply.get("content", "")
    prompt_tokens = int(reply.get("prompt_tokens", 10))
    completion_tokens = int(reply.get("completion_tokens", max(1, len(content) // 4)))
    logprobs = reply.get("logprobs")
    return {
        "id": f"chatcmpl-stub-{seq}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "stub"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": {"content": logprobs} if logprobs is not None else None,
            "finish_reason": reply.get("finish_reason", "stop"),
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens,
                  # OpenAI's prompt caching: the part of the prompt served from its cache (billed cheaper).
                  **({"prompt_tokens_details": {"cached_tokens": int(reply["cached_tokens"])}}
                     if reply.get("cached_tokens") is not None else {})},
    }


def _sse_chunks(request: dict[str, Any], completion: dict[str, Any]) -> list[dict[str, Any]]:
    choice = completion["choices"][0]
    content = choice["message"]["content"]
    lp = (choice["logprobs"] or {}).get("content")
    base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    pieces = [content[i : i + 16] for i in range(0, len(content), 16)] or [""]
    chunks = []
    for i, piece in enumerate(pieces):
        delta: dict[str, Any] = {"content": piece} | ({"role": "assistant"} if i == 0 else {})
        chunk_lp = {"content": lp} if (lp is not None and i == 0) else None  # all logprobs on the first chunk
        chunks.append(base | {"choices": [{"index": 0, "delta": delta, "logprobs": chunk_lp, "finish_reason": None}]})
    chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]})
    if (request.get("stream_options") or {}).get("include_usage"):
        chunks.append(base | {"choices": [], "usage": completion["usage"]})
    return chunks


def _make_handler(server: StubOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else ~40 ms per response (Nagle + delayed ACK)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            self.end_headers()
            self.wfile.write(data)

        def _client_gone(self) -> bool:
            """The client closed its connection (its time-out): readable with nothing left to read."""
            try:
                ready, _, _ = select.select([self.connection], [], [], 0)
                return bool(ready) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _work(self, seconds: float, entry: dict[str, Any]) -> bool:
            """Hold a slot for `seconds` of work; False when the client left first (its work is dropped)."""
            assert server.slots is not None
            with server.slots:
                end = time.monotonic() + seconds
                while True:
                    if self._client_gone():
                        entry["cancelled"] = True
                        self.close_connection = True
                        return False
                    left = end - time.monotonic()
                    if left <= 0:
                        entry["completed"] = True
                        return True
                    time.sleep(min(0.01, left))

        def do_GET(self) -> None:
            server._log(self.path, {})
            parts = self.path.split("?", 1)[0].rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == "batches":
                job = server._retrieve_batch(parts[-1])
                if job is None:
                    self._send_json(404, {"error": {"message": "no such batch", "type": "not_found"}})
                else:
                    self._send_json(200, job)
                return
            if len(parts) >= 3 and parts[-1] == "content" and parts[-3] == "files" and parts[-2] in server.files:
                data = server.files[parts[-2]]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if self.path.rstrip("/").endswith("/props") and server.props is not None:
                self._send_json(200, server.props)
            elif self.path.rstrip("/").endswith("/models") and server.models is not None:
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in server.models]
                self._send_json(200, {"object": "list", "data": data})
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not server.batch_api and self.path.rstrip("/").endswith(("/files", "/batches")):
                server._log(self.path, {})
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            if self.path.rstrip("/").endswith("/files"):
                data, purpose = _multipart_file(self.headers.get("Content-Type") or "", raw)
                server._log(self.path, {"purpose": purpose, "bytes": len(data)})
                self._send_json(200, server._new_file(data, purpose))
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            entry = server._log(self.path, body)
            entry["authorization"] = self.headers.get("Authorization")  # which key reached this server
            entry["headers"] = {k.lower(): v for k, v in self.headers.items()}
            if self.path.rstrip("/").endswith("/batches"):
                self._send_json(200, server._new_batch(body))
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            try:
                reply = server.responder(body)
            except Exception as exc:  # a broken responder shows up as a 500 with its message
                reply = {"status": 500, "body": {"error": {"message": f"responder failed: {exc!r}"}}}
            if server.slots is not None:
                if not self._work(float(reply.get("delay") or 0.0), entry):
                    return
                if self._client_gone():  # it left as the work ended: not delivered, not counted as done
                    entry["completed"], entry["cancelled"] = False, True
                    self.close_connection = True
                    return
            elif reply.get("delay"):
                time.sleep(float(reply["delay"]))
            if reply.get("drop"):
                self.close_connection = True
                return
            # Flag first (a fast client may act on the reply before this thread runs again), undo on failure.
            entry["delivered"] = True
            try:
                if "status" in reply:
                    err = reply.get("body") or {"error": {"message": f"stub error {reply['status']}", "type": "stub"}}
                    self._send_json(int(reply["status"]), err, reply.get("headers"))
                elif body.get("stream"):
                    self._send_sse(body, _completion(body, reply, entry["seq"]))
                else:
                    self._send_json(200, _completion(body, reply, entry["seq"]))
                self.wfile.flush()
            except OSError:
                entry["delivered"] = False
                raise
            entry["written"] = True
            if server.on_delivered is not None:
                server.on_delivered(entry)

        def _send_sse(self, request: dict[str, Any], completion: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in _sse_chunks(request, completion):
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


def _multipart_file(content_type: str, raw: bytes) -> tuple[bytes, str]:
    """The `file` part and the `purpose` field of a multipart/form-data upload."""
    from email.parser import BytesParser
    from email.policy import default

    msg = BytesParser(policy=default).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    data, purpose = b"", ""
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            data = payload
        elif name == "purpose":
            purpose = payload.decode()
    return data, purpose


_TOKEN_RE = re.compile(r"\d|[A-Za-z_]+|\s+|[^\w\s]")


def _lp_entry(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "token": token, "logprob": logprob, "bytes": list(token.encode()),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
    }


def digit_logprobs(text: str, distribution: dict[str, float], *, key: str | None = None) -> list[dict[str, Any]]:
    """OpenAI-format logprob content for `text`: the first digit (after `key` if given) gets
    `distribution` (token -> probability) as its top_logprobs; every other token is certain."""
    start = text.find(f'"{key}"') if key else 0
    if start < 0:
        raise ValueError(f"key {key!r} not in text")
    m = re.search(r"\d", text[start:])
    score_at = start + m.start() if m else -1
    out: list[dict[str, Any]] = []
    for tok in _TOKEN_RE.finditer(text):
        if tok.start() == score_at:
            top = sorted(((t, math.log(p)) for t, p in distribution.items() if p > 0), key=lambda x: -x[1])
            own = dict(top).get(tok.group(), math.log(1e-6))
            out.append(_lp_entry(tok.group(), own, top))
        else:
            out.append(_lp_entry(tok.group(), 0.0, [(tok.group(), 0.0)]))
    return out
