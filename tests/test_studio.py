"""`langgraph dev` serves both graphs offline: start it on a free loopback port, list the assistants, run the
main graph through the HTTP API against the scripted OpenAI-compatible stub, and read the thread's state and
history (what Studio shows). Needs the `studio` extra (`langgraph-cli[inmem]`); deselect with `-m "not studio"`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from llmxmr.testing.scripted_server import scripted_server

pytestmark = [pytest.mark.studio, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[1]
CLEARED = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY",
           "LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT", "LANGSMITH_PROJECT", "GOOGLE_API_KEY")
FAST = {"mode": "default", "units": 2, "max_layers": 1, "refine_rounds": 1, "best_of": 2, "max_blocks": 1}


def _cli() -> str:
    exe = Path(sys.executable).with_name("langgraph")
    if exe.is_file():
        return str(exe)
    found = shutil.which("langgraph")
    if not found:
        pytest.skip("langgraph-cli is not installed: pip install -e '.[studio]' (langgraph-cli[inmem])")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(base: str, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:2000]!r}") from exc


def papers(n: int) -> list[dict[str, str]]:
    return [{"title": f"Paper {i}: study of topic {i % 2}",
             "txt": f"Body of paper {i} about topic {i % 2}. " + " ".join(f"w{i}x{j}" for j in range(80)),
             "url": f"https://example.org/p/{i}"} for i in range(n)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cli = _cli()
    cwd = tmp_path_factory.mktemp("studio")  # the server writes .langgraph_api/ here
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(LANGGRAPH_CLI_NO_ANALYTICS="1", OPENAI_API_KEY="x", LANGSMITH_TRACING="false",
               LANGCHAIN_TRACING_V2="false", PYTHONUNBUFFERED="1")
    log = (cwd / "server.log").open("w")
    proc = subprocess.Popen(
        [cli, "dev", "--no-browser", "--no-reload", "--port", str(port), "--host", "127.0.0.1",
         "--config", str(ROOT / "langgraph.json")],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            if proc.poll() is not None:
                pytest.fail("langgraph dev exited early:\n" + (cwd / "server.log").read_text()[-4000:])
            try:
                if _http(base, "GET", "/ok", timeout=2).get("ok"):
                    break
            except (OSError, AssertionError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("langgraph dev did not answer /ok within 40 s:\n" + (cwd / "server.log").read_text()[-4000:])
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_lists_the_graphs(server):
    assistants = _http(server, "POST", "/assistants/search", {"limit": 10})
    assert {a["graph_id"] for a in assistants} == {"llmxmr", "llmxmr_writer", "llmxmr_eval"}
    for a in assistants:
        schemas = _http(server, "GET", f"/assistants/{a['assistant_id']}/schemas")
        assert schemas["input_schema"]["properties"], a["graph_id"]
    main = next(a for a in assistants if a["graph_id"] == "llmxmr")
    schemas = _http(server, "GET", f"/assistants/{main['assistant_id']}/schemas")
    assert {"corpus_path", "papers", "title"} <= set(schemas["input_schema"]["properties"])
    assert {"model", "base_url"} <= set(schemas["context_schema"]["properties"])


def test_runs_main_graph_over_http_and_reads_state_and_history(server):
    with scripted_server() as stub:
        thread = _http(server, "POST", "/threads", {})["thread_id"]
        context = {"model": "openai:scripted", "base_url": stub.base_url, **FAST}
        out = _http(server, "POST", f"/threads/{thread}/runs/wait", {
            "assistant_id": "llmxmr",
            "input": {"papers": papers(4), "title": "Studio survey"},
            "context": context,
        }, timeout=60)
        assert stub.chat_requests, "the run never reached the stub model"
    assert out.get("__error__") is None, out
    assert out["article"].startswith("# Studio survey")
    assert {"article", "outline", "references", "report"} <= set(out)
    assert out["report"]["settings"]["model"] == "openai:scripted"
    assert out["report"]["settings"]["thread_id"] == thread

    state = _http(server, "GET", f"/threads/{thread}/state")
    assert state["next"] == []
    values = state["values"]
    assert values["outline"]["sections"], "the outline is visible in the thread state"
    assert any(h["kind"] == "layer" for h in values["entropy_history"])
    assert "text" not in json.dumps(values["paper_refs"]), "documents stay in the store, not in state"

    history = _http(server, "POST", f"/threads/{thread}/history", {"limit": 200})
    assert len(history) > 5
    steps = {tuple(h.get("next") or ()) for h in history}
    assert ("prepare",) in steps and ("finalize",) in steps


def test_runs_writer_graph_alone_with_inline_outline_and_digests(server):
    def sec(sid: str, title: str, children: tuple = ()) -> dict[str, Any]:
        return {"section_id": sid, "title": title, "construction": f"Extract {title.lower()}.",
                "analysis": f"Compare {title.lower()}.", "children": list(children)}

    outline = {"title": "Locks", "sections": [sec("s1", "Basics", (sec("s2", "Spin locks"),)), sec("s3", "Outlook")],
               "next_id": 4}
    digests = [{"paper_id": "p-a", "outline_key": "", "sections": {"s2": "Spinning wastes cycles [@p-a]."}},
               {"paper_id": "p-b", "outline_key": "", "sections": {"s3": "Transactions may replace locks [@p-b]."}}]
    refs = [{"paper_id": "p-a", "title": "Spinning"}, {"paper_id": "p-b", "title": "Transactions"}]
    with scripted_server() as stub:
        thread = _http(server, "POST", "/threads", {})["thread_id"]
        out = _http(server, "POST", f"/threads/{thread}/runs/wait", {
            "assistant_id": "llmxmr_writer",
            "input": {"run_id": "studio-writer", "final_key": "", "title": "Locks", "outline": outline,
                      "digests": digests, "paper_refs": refs},
            "context": {"model": "openai:scripted", "base_url": stub.base_url},
        }, timeout=60)
    assert out.get("__error__") is None, out
    assert set(out["sections"]) == {"s1", "s2", "s3"}
    assert out["usage"]["write_section"]["calls"] == 3


def test_outline_review_interrupt_and_resume_over_http(server):
    """Human in the loop from Studio: the run stops at review_outline with the outline in the interrupt; a resume
    command with an edited outline finishes the run with it."""
    with scripted_server() as stub:
        thread = _http(server, "POST", "/threads", {})["thread_id"]
        context = {"model": "openai:scripted", "base_url": stub.base_url, **FAST, "review_outline": True}
        _http(server, "POST", f"/threads/{thread}/runs/wait", {
            "assistant_id": "llmxmr", "input": {"papers": papers(3), "title": "Reviewed in Studio"}, "context": context,
        }, timeout=60)
        state = _http(server, "GET", f"/threads/{thread}/state")
        assert state["next"] == ["review_outline"]
        interrupts = [i for t in state["tasks"] for i in t.get("interrupts") or []]
        payload = interrupts[0]["value"]
        assert payload["kind"] == "review_outline" and payload["markdown"].startswith("# ")
        edited = payload["outline"]
        edited["sections"][0]["title"] = "Retitled in Studio"
        out = _http(server, "POST", f"/threads/{thread}/runs/wait", {
            "assistant_id": "llmxmr", "command": {"resume": edited}, "context": context,
        }, timeout=60)
    assert out.get("__error__") is None, out
    assert "Retitled in Studio" in out["article"]
    assert _http(server, "GET", f"/threads/{thread}/state")["next"] == []


def test_sdk_round_trip_streams_progress_pauses_for_review_and_resumes(server):
    """The LangGraph SDK against the server: a run streams its progress events (stream_mode="custom"), pauses
    at the outline review, is resumed with an edited outline, and the final article is read from the thread."""
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=server, api_key=None)
    with scripted_server() as stub:
        thread = client.threads.create()["thread_id"]
        context = {"model": "openai:scripted", "base_url": stub.base_url, **FAST, "review_outline": True}
        progress = [part.data for part in client.runs.stream(
            thread, "llmxmr", input={"papers": papers(3), "title": "Served by the SDK"}, context=context,
            stream_mode="custom") if part.event == "custom"]
        stages = {e.get("stage") for e in progress if isinstance(e, dict)}
        assert {"map", "digest"} <= stages, stages
        state = client.threads.get_state(thread)
        assert state["next"] == ["review_outline"]
        payload = state["tasks"][0]["interrupts"][0]["value"]
        assert payload["kind"] == "review_outline"
        edited = payload["outline"]
        edited["sections"][0]["title"] = "Retitled through the SDK"
        after = [part.data for part in client.runs.stream(
            thread, "llmxmr", command={"resume": edited}, context=context, stream_mode="custom",
            stream_subgraphs=True) if part.event.startswith("custom")]
        written = [e for e in after if isinstance(e, dict) and e.get("stage") == "write" and e.get("unit")]
        assert len(written) == len({e["unit"] for e in written}) >= 3  # one event per section of the writer subgraph
    final = client.threads.get_state(thread)
    assert final["next"] == []
    article = final["values"]["article"]
    assert article.startswith("# Served by the SDK") and "Retitled through the SDK" in article
