"""Batch mode (`Settings.batch`): the map pass and each digest pass sent as one OpenAI Batch API job, then
fanned out as usual. The job's answers are written to the durable response record under the very keys the
`map_chunk` / `outline_digest` tasks ask with, so those tasks replay them instead of paying again; a line
that failed has no record, and its task asks it as an ordinary call.

The job's id is written to the store as soon as the job exists (`run_store.put_batch`): a run stopped while
it waits re-enters this step on resume, finds the id and collects the job instead of submitting another.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from langgraph.types import Command, Send

from llmxmr import run_store
from llmxmr.limits import output_tokens
from llmxmr.models import batch as api
from llmxmr.nodes.digest import digest_request, digest_schema
from llmxmr.nodes.map import map_request
from llmxmr.nodes.step import Step
from llmxmr.stages import STAGES, Stage
from llmxmr.state.tasks import BatchDigestTask, BatchMapTask, DigestTask, MapTask

_sleep = time.sleep  # module-level so tests can count the waits without waiting


def round_id(stage: str, keys: Sequence[str]) -> str:
    """The job's name in the store: the stage and a hash of every request key of the round (the same round
    on resume, whichever of its lines were already recorded)."""
    return f"{stage}-{hashlib.sha256(chr(10).join(sorted(keys)).encode()).hexdigest()[:16]}"


def run_batch(step: Step, stage: Stage, units: Sequence[tuple[str, list, Any]]) -> None:
    """Submit (or find) the round's job for the `units` (unit, messages, schema or None for the stage's) not
    answered yet, wait for it, record its answers. Without an OpenAI-family client the tasks simply make
    ordinary calls. The schema must be the one the ordinary call sends: it is part of the request's key."""
    caller, meter = step.calls.caller, step.calls.meter
    cap = output_tokens(step.settings, stage)
    lines, keys = [], []
    for unit, messages, schema in units:
        made = caller.batch_request(role=stage.role, messages=messages, schema=schema or stage.schema, max_tokens=cap)
        if made is None:
            meter.note(stage.name, "batch", "batch_unavailable",
                       f"the {stage.role} model has no Batch API client: ordinary calls instead")
            return
        key, body = made
        keys.append(key)
        if run_store.get_response(step.store, key) is None:
            lines.append(api.BatchLine(key=key, unit=unit, body=body))
    name = round_id(stage.name, keys)
    record = run_store.get_batch(step.store, step.run_id, name)
    if not lines or (record is not None and record.get("collected")):
        return
    client = caller.model_for(stage.role).root_client
    with _provider_errors(step, stage):
        if record is None:
            if caller.budget_check is not None:
                caller.budget_check()  # raises BudgetExceededError before the job is paid for
            batch_id = api.submit(client, lines, description=f"llmxmr {step.run_id} {name}")
            record = {"batch_id": batch_id, "stage": stage.name, "lines": len(lines), "status": "submitted",
                      "collected": False, "submitted_at": time.time()}
            run_store.put_batch(step.store, step.run_id, name, record)  # before waiting: a kill now resumes here
        st = _wait(step, stage.name, record["batch_id"], len(lines))
        answers = api.results(client, st)
    by_key = {ln.key: ln for ln in lines}
    recorded = 0
    for key, completion in answers.items():
        line = by_key.get(key)
        if line is not None and caller.record_batch_reply(key, role=stage.role, stage=stage.name, unit=line.unit,
                                                          completion=completion, max_tokens=cap, meter=meter):
            usage = completion.get("usage") or {}  # the tokens themselves are counted when the task replays it
            meter.add(stage.name, calls=1, batched=1, batched_prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      batched_completion_tokens=int(usage.get("completion_tokens") or 0))
            recorded += 1
    if recorded < len(lines):
        meter.note(stage.name, "batch", "batch_lines",
                   f"batch {record['batch_id']} ({st.status}): {len(lines) - recorded} of {len(lines)} lines "
                   "failed or are missing; they are asked as ordinary calls")
    run_store.put_batch(step.store, step.run_id, name, {**record, "status": st.status, "collected": True,
                                                        "recorded": recorded})


@contextlib.contextmanager
def _provider_errors(step: Step, stage: Stage) -> Iterator[None]:
    """An error of the files or batches endpoints stops the run with one line naming it and the fix."""
    import openai

    from llmxmr.models.errors import ProviderError

    try:
        yield
    except openai.APIError as exc:
        status = getattr(exc, "status_code", None)
        model = step.settings.model_for(stage.role)
        raise ProviderError(
            f"batch mode: the Batch API of model {model} (stage {stage.name}) failed: {' '.join(str(exc).split())[:300]}. "
            "Fix: use a server that implements /v1/files and /v1/batches, or resume with --set batch= "
            "to make ordinary calls", status=status if isinstance(status, int) else None) from exc


def _wait(step: Step, stage: str, batch_id: str, lines: int) -> api.BatchStatus:
    client = step.calls.caller.model_for(STAGES[stage].role).root_client
    while True:
        st = api.status(client, batch_id)
        step.progress(f"batch {stage}", done=0, total=lines, batch=batch_id, status=st.status,
                      completed=st.completed, failed=st.failed)
        if st.done:
            return st
        _sleep(step.settings.batch_poll_seconds)


def batch_map(task: BatchMapTask, step: Step) -> Command:
    """The map pass as one Batch API job, then its map tasks (which replay the job's answers)."""
    tasks = [MapTask(run_id=task["run_id"], topic=task["topic"], paper_id=pid, chunk=int(c)) for pid, c in task["chunks"]]
    if "map" in step.settings.batch_stages:  # a resume with `--set batch=` goes on with ordinary calls
        units: list[tuple[str, Any]] = []
        for t in tasks:
            unit, build, _, _ = map_request(t, step)
            units.append((unit, build(1.0), None))
        run_batch(step, STAGES["map"], units)
    return Command(update=step.update(), goto=[Send("map_chunk", t) for t in tasks])


def batch_digest(task: BatchDigestTask, step: Step) -> Command:
    """A digest pass as one Batch API job, then its digest tasks (which replay the job's answers)."""
    key, prior_key = task["outline_key"], task.get("prior_key")
    if "digest" in step.settings.batch_stages:  # a resume with `--set batch=` goes on with ordinary calls
        units: list[tuple[str, Any]] = []
        for pid in task["paper_ids"]:
            if run_store.get_digest(step.store, step.run_id, key, pid) is None:
                r = digest_request(pid, key, step, prior_key)
                if r.again != []:  # a paper with nothing to read again is not asked (outline_digest keeps its digest)
                    units.append((r.unit, r.build(1.0), digest_schema(r.outline, r.again)))
        run_batch(step, STAGES["digest"], units)
    return Command(update=step.update(), goto=[
        Send("outline_digest", DigestTask(run_id=task["run_id"], paper_id=pid, outline_key=key, then=task["then"],
                                          prior_key=prior_key))
        for pid in task["paper_ids"]])
