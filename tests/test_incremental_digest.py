"""After a refinement block the default mode reads each paper again only for the sections that are new or
whose title or construction changed (`incremental_digest`); its content for the others is kept. Checked
from the prompts the scripted reader received and from the digests in the store."""

from __future__ import annotations

import re
from typing import Any

from graph_helpers import papers, user_text
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from llmxmr import run_store
from llmxmr.core.revision import sections_to_read_again
from llmxmr.core.tree import section_ids
from llmxmr.graph import build_graph
from llmxmr.state.context import Context
from llmxmr.testing.fake_model import ScriptedChatModel
from llmxmr.testing.responder import DOC_RE, digest_asks

# One block whose best outline differs from the skeleton (the scripted judge prefers it), then its digest pass.
FAST = dict(mode="default", units=2, max_layers=1, refine_rounds=0, best_of=1, max_blocks=1)
CONFIG = {"configurable": {"thread_id": "t"}, "max_concurrency": 8}
CORPUS = papers(12)
LATER = "This reading asks only for"
DESCRIBED = re.compile(r"^\s*\[(s\d+)\][^\n]*\n\s+construction:", re.MULTILINE)


def run(failing: str | None = None, **context: Any) -> tuple[list[str], InMemoryStore, dict[str, Any]]:
    """(the digest prompts, the store, the final state); `failing`: the title of a paper whose first reading
    answers garbage."""
    prompts: list[str] = []
    failed: list[str] = []  # the failing paper's first pass: every ask and re-ask of it

    def record(messages, n):
        text = user_text(messages)
        prompts.append(text)
        if failing and f'title="{failing}"' in text and (not failed or failed[0] in text):
            failed.append(text.split("\n\n", 1)[0])  # its outline: the first pass's
            return "not an answer"
        return None

    model = ScriptedChatModel(overrides={"digest": record})
    store = InMemoryStore()
    graph = build_graph(models=model, store=store, checkpointer=InMemorySaver())
    graph.invoke({"papers": CORPUS, "title": "T"}, CONFIG, context=Context(**{**FAST, **context}))
    return prompts, store, graph.get_state(CONFIG).values


def outlines(store: InMemoryStore, values: dict[str, Any]):
    keys = [b["outline_key"] for b in values["block_outlines"]]
    assert len(keys) == 2 and keys[0] != keys[1], "the block found a better outline (the test's premise)"
    return [(k, run_store.get_outline(store, values["run_id"], k)) for k in keys]


def test_the_pass_after_a_block_reads_each_paper_only_for_what_changed() -> None:
    prompts, store, values = run()
    (k0, o0), (k1, o1) = outlines(store, values)
    again = sections_to_read_again(o0, o1)
    assert again, "the block's outline retitled or added a section"
    later = [p for p in prompts if LATER in p]
    assert len(prompts) == 2 * len(CORPUS) and len(later) == len(CORPUS)
    in_order = [sid for sid in section_ids(o1) if sid in again]
    for p in later:
        assert digest_asks(p)[1] == in_order  # named, in the outline's order
        assert DESCRIBED.findall(p.split("<document", 1)[0]) == in_order  # only their construction is shown
        assert set(digest_asks(p)[0]) == set(section_ids(o1))  # every section by id and title
    assert len({p.split("<document", 1)[0] for p in later}) == 1, "one shared prefix for the pass"
    for p in prompts[: len(CORPUS)]:
        assert len(DESCRIBED.findall(p.split("<document", 1)[0])) == len(section_ids(o0))

    ids1, read_again = set(section_ids(o1)), set()
    for ref in values["paper_refs"]:
        d0 = run_store.get_digest(store, values["run_id"], k0, ref["paper_id"])
        d1 = run_store.get_digest(store, values["run_id"], k1, ref["paper_id"])
        kept = {sid: text for sid, text in d0.sections.items() if sid in ids1 and sid not in again}
        assert {sid: t for sid, t in d1.sections.items() if sid not in again} == kept
        read_again |= set(d1.sections) & again
        assert set(d1.sections) <= ids1
    assert read_again, "the later reading's answers are in the digests"


def test_with_the_setting_off_every_pass_reads_the_whole_outline() -> None:
    prompts, store, values = run(incremental_digest=False)
    (_, o0), (_, o1) = outlines(store, values)
    assert not any(LATER in p for p in prompts) and len(prompts) == 2 * len(CORPUS)
    for p in prompts[len(CORPUS):]:
        assert len(DESCRIBED.findall(p.split("<document", 1)[0])) == len(section_ids(o1))


def test_a_paper_whose_earlier_reading_failed_is_read_in_full() -> None:
    title = CORPUS[0]["title"]
    prompts, store, values = run(failing=title)
    (_, o0), (k1, o1) = outlines(store, values)
    mine = [p for p in prompts if f'title="{title}"' in p and "Outline:" in p.split("\n", 1)[0]]
    pid = DOC_RE.search(mine[0]).group(1)
    assert LATER not in mine[-1] and len(DESCRIBED.findall(mine[-1].split("<document", 1)[0])) == len(section_ids(o1))
    assert len([p for p in prompts if LATER in p]) == len(CORPUS) - 1
    assert run_store.get_digest(store, values["run_id"], k1, pid).sections  # read, and digested, in full
