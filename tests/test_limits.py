"""Token limits per stage, chunk spans, and a long document mapped chunk by chunk then reduced."""

from __future__ import annotations

import pytest
from langgraph.store.memory import InMemoryStore

from llmxmr import limits
from llmxmr.graph import build_graph
from llmxmr.limits import chunk_bounds, chunks_of, input_budget, output_tokens
from llmxmr.models import tokens
from llmxmr.nodes.skeleton import merge_limits
from llmxmr.state.context import Context, resolve_settings
from llmxmr.testing.fake_model import ScriptedChatModel

LONG = "\n\n".join(f"Paragraph {i} reports a {i}% gain. " + "detail " * 150 for i in range(30))


def test_budgets_follow_the_model_and_the_caps() -> None:
    local = resolve_settings({})
    assert output_tokens(local, "judge") == 500
    assert input_budget(local, "digest") < 4096  # the embedded server's slot
    capped = resolve_settings({"model": "openai:m", "max_output_tokens": 100})
    assert output_tokens(capped, "skeleton") == 100
    assert input_budget(capped, "digest") > 100_000


def test_chunk_spans_cover_the_chunks_in_order() -> None:
    settings = resolve_settings({"context_window": 1200})
    spans = chunk_bounds(LONG, settings)
    chunks = chunks_of(LONG, settings)
    assert len(spans) == len(chunks) > 1
    assert [LONG[a:b].strip() for a, b in spans] == [c.strip() for c in chunks]
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


def test_a_text_longer_than_a_segment_is_split_and_counted_slice_by_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 16 §5: a 200 MB document is never tokenized or split as one piece (gigabytes of token ids).
    settings = resolve_settings({"context_window": 1200})
    whole = chunk_bounds(LONG, settings)
    exact = tokens.count_tokens(LONG)
    monkeypatch.setattr(limits, "SEGMENT_CHARS", 6000)
    monkeypatch.setattr(tokens, "SLICE_CHARS", 5000)
    seen: list[int] = []
    real = limits.chunks_of
    monkeypatch.setattr(limits, "chunks_of", lambda text, s: seen.append(len(text)) or real(text, s))
    spans = chunk_bounds(LONG, settings)
    assert max(seen) <= 6000 and len(seen) == len(tokens.text_slices(LONG, 6000))  # one segment at a time
    assert abs(len(spans) - len(whole)) <= len(seen)  # a chunk ends at each segment's end, at most
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    assert "".join(LONG[a:b] for a, b in spans).split() == LONG.split()  # every word in exactly one chunk
    assert abs(tokens.count_tokens(LONG) - exact) <= len(tokens.text_slices(LONG, 5000))
    head, cut = tokens.truncate_to_tokens(LONG, 50)
    assert cut and LONG.startswith(head) and tokens.count_tokens(head) <= 50


def test_a_long_document_is_mapped_in_chunks_and_reduced() -> None:
    model = ScriptedChatModel()
    papers = [{"title": "Long paper", "txt": LONG}, {"title": "Short paper", "txt": "A short text about caches."}]
    out = build_graph(models=model, store=InMemoryStore()).invoke(
        {"papers": papers, "title": "T"},
        context=Context(context_window=1200, max_layers=0, refine_rounds=0, max_blocks=1))
    chunks = len(chunk_bounds(LONG, resolve_settings({"context_window": 1200})))
    assert model.calls["map"] == chunks + 1
    assert model.calls["reduce_notes"] == 1  # only the multi-chunk document is reduced
    assert out["article"].startswith("# T")


def test_merge_limits_cap_default_mode_only() -> None:
    assert merge_limits(resolve_settings({"model": "openai:m"})) == (48_000, 8)
    budget, fan_in = merge_limits(resolve_settings({"model": "openai:m", "mode": "reference"}))
    assert budget > 100_000 and fan_in is None  # the reference batches by the window alone


def test_default_mode_merges_at_most_eight_drafts_per_call() -> None:
    seen: list[str] = []

    def record(messages, n):
        seen.append(messages[1].content)
        return None  # the scripted answer

    model = ScriptedChatModel(overrides={"merge_skeleton": record})
    papers = [{"title": f"Paper {i}", "txt": f"Paper {i} reports result {i} on topic {i % 5}."} for i in range(27)]
    build_graph(models=model, store=InMemoryStore()).invoke(
        {"papers": papers, "title": "T"},
        context=Context(max_layers=0, refine_rounds=0, max_blocks=1, skeleton_group_size=1, context_window=128_000))
    assert len(seen) == 3  # 9 groups, one draft each: level 0 merges 8 + 1, level 1 merges the 2 results
    assert any("Draft 8:" in prompt for prompt in seen)
    assert all("Draft 9:" not in prompt for prompt in seen)


def test_the_embedded_server_gets_no_more_requests_than_it_has_slots() -> None:
    from llmxmr.models.caller import server_slots
    from llmxmr.models.specs import LOCAL_PARALLEL

    assert server_slots("openai:gpt-4.1") is None
    slots = server_slots("local")
    assert slots is server_slots("local")  # one per model in the process
    assert all(slots.acquire(blocking=False) for _ in range(LOCAL_PARALLEL))
    assert not slots.acquire(blocking=False)
    for _ in range(LOCAL_PARALLEL):
        slots.release()
