"""The OpenAI Batch API (also served by OpenAI-compatible servers that implement /v1/files and /v1/batches):
one JSONL file of chat-completion requests in, one job, its output file out. Half the price of ordinary
calls, answered within the completion window (24 h). Only the client side lives here; `nodes/batch.py`
decides what goes into a job, records the job's id durably and collects it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
DONE = frozenset({"completed", "failed", "expired", "cancelled"})  # the job will not change any more


@dataclass(frozen=True)
class BatchLine:
    key: str  # the durable record's key: the line's custom_id
    unit: str
    body: dict[str, Any]


@dataclass(frozen=True)
class BatchStatus:
    status: str
    completed: int
    failed: int
    total: int
    output_file_id: str | None
    error_file_id: str | None

    @property
    def done(self) -> bool:
        return self.status in DONE


def input_jsonl(lines: Sequence[BatchLine]) -> bytes:
    return "".join(json.dumps({"custom_id": ln.key, "method": "POST", "url": ENDPOINT, "body": ln.body},
                              ensure_ascii=False) + "\n" for ln in lines).encode()


def submit(client: Any, lines: Sequence[BatchLine], *, description: str) -> str:
    """Upload the requests and create the job; its id."""
    upload = client.files.create(file=("llmxmr-batch.jsonl", input_jsonl(lines)), purpose="batch")
    job = client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT, completion_window=WINDOW,
                                metadata={"description": description[:500]})
    return str(job.id)


def status(client: Any, batch_id: str) -> BatchStatus:
    job = client.batches.retrieve(batch_id)
    counts = getattr(job, "request_counts", None)
    return BatchStatus(status=str(job.status), completed=int(getattr(counts, "completed", 0) or 0),
                       failed=int(getattr(counts, "failed", 0) or 0), total=int(getattr(counts, "total", 0) or 0),
                       output_file_id=getattr(job, "output_file_id", None),
                       error_file_id=getattr(job, "error_file_id", None))


def results(client: Any, st: BatchStatus) -> dict[str, dict[str, Any]]:
    """custom_id -> chat completion of every line that succeeded (HTTP 200); failed lines are left out."""
    if not st.output_file_id:
        return {}
    text = client.files.content(st.output_file_id).text
    out: dict[str, dict[str, Any]] = {}
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        response = line.get("response") or {}
        if line.get("custom_id") and response.get("status_code") == 200 and isinstance(response.get("body"), dict):
            out[str(line["custom_id"])] = response["body"]
    return out
