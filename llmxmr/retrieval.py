"""Passages of a source for a claim: a paper's text cut into overlapping word windows (once per run) and
ranked with BM25 (the `bm25s` library), so that a verifier reads the few passages that matter, never the
whole document."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

PASSAGE_WORDS = 120  # words per passage: a few sentences, enough context for one claim
PASSAGE_STRIDE = 90  # consecutive passages share 30 words, so a claim's evidence is not cut in two
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Passage:
    start: int  # character span in the paper's text
    end: int
    text: str
    score: float  # BM25 score for the claim (0: no word in common)


def passage_spans(text: str, words: int = PASSAGE_WORDS, stride: int = PASSAGE_STRIDE) -> list[tuple[int, int]]:
    """Character spans of overlapping windows of `words` words (deterministic: the same text, the same spans)."""
    bounds = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    if not bounds:
        return []
    spans = []
    for first in range(0, len(bounds), stride):
        last = min(first + words, len(bounds)) - 1
        spans.append((bounds[first][0], bounds[last][1]))
        if last == len(bounds) - 1:
            break
    return spans


class PassageIndex:
    """One paper's passages and their BM25 index."""

    def __init__(self, text: str, spans: list[tuple[int, int]]) -> None:
        import bm25s  # numpy-backed: imported when the first claim is checked

        self.text = text
        self.spans = spans or [(0, len(text))]
        self._bm25s = bm25s
        self._retriever = bm25s.BM25()
        corpus = [text[a:b] for a, b in self.spans]
        self._retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)

    def best(self, query: str, k: int) -> list[Passage]:
        """The `k` best passages for `query`, best first; ties keep the text's order."""
        k = max(1, min(k, len(self.spans)))
        tokens = self._bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:  # nothing but stopwords: the first passages
            return [Passage(a, b, self.text[a:b], 0.0) for a, b in self.spans[:k]]
        docs, scores = self._retriever.retrieve(tokens, k=k, show_progress=False)
        ranked = sorted(zip(docs[0].tolist(), scores[0].tolist()), key=lambda x: (-x[1], x[0]))
        return [Passage(self.spans[i][0], self.spans[i][1], self.text[self.spans[i][0]:self.spans[i][1]], float(s))
                for i, s in ranked]


# Indexes by run, then paper: a section's claims cite the same few papers, and a paper's index is built
# once per process instead of once per claim. Bounded per run (a million-token corpus has thousands of
# papers) and in runs: surveys run at once in one process (`--parallel-surveys`) each keep their own room,
# where one shared bound let them evict each other's indexes and rebuild them claim after claim.
_INDEXES: OrderedDict[str, OrderedDict[str, PassageIndex]] = OrderedDict()
_LOCK = threading.Lock()
INDEX_CACHE = 64  # papers per run
INDEX_RUNS = 16  # runs; a finished run's indexes are dropped at its end (`forget`)


def cached_index(run_id: str, paper_id: str) -> PassageIndex | None:
    """The paper's index when this process built it already (its text need not be read again)."""
    with _LOCK:
        papers = _INDEXES.get(run_id)
        index = papers.get(paper_id) if papers is not None else None
        if index is not None:
            _INDEXES.move_to_end(run_id)
            papers.move_to_end(paper_id)  # type: ignore[union-attr]
        return index


_BUILD_LOCK = threading.Lock()  # one build at a time: parallel checks of one paper read its text once


def index_for(run_id: str, paper_id: str, load: Callable[[], tuple[str, list[tuple[int, int]]]]) -> PassageIndex:
    """The paper's index, built from `load()` (its text and passage spans) only when no check built it yet."""
    index = cached_index(run_id, paper_id)
    if index is not None:
        return index
    with _BUILD_LOCK:
        index = cached_index(run_id, paper_id)
        if index is not None:
            return index
        index = PassageIndex(*load())
        with _LOCK:
            papers = _INDEXES.setdefault(run_id, OrderedDict())
            _INDEXES.move_to_end(run_id)
            papers[paper_id] = index
            while len(papers) > INDEX_CACHE:
                papers.popitem(last=False)
            while len(_INDEXES) > INDEX_RUNS:
                _INDEXES.popitem(last=False)
    return index


def forget(run_id: str) -> None:
    """Drop a run's indexes (its run ended; a resume builds them again from the store)."""
    with _LOCK:
        _INDEXES.pop(run_id, None)


def forget_all() -> None:
    with _LOCK:
        _INDEXES.clear()
