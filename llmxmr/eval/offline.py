"""Metrics that need no judge and always run: do the citations resolve, how much of the corpus is cited,
the outline's shape, how even the sections are, how many claims carry no citation, and a lexical support
score of each cited claim against the best passage of the source it cites (the same BM25 retriever as the
pipeline's citation check)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator, Sequence

from llmxmr.citations import iter_prose
from llmxmr.core.claims import claim_text, split_claims
from llmxmr.eval.articles import _AUTHOR_YEAR, _NUMERIC_CITE, Article, _cited_labels
from llmxmr.eval.stats import Estimate, bootstrap
from llmxmr.retrieval import PassageIndex, index_for, passage_spans
from llmxmr.state.records import Document

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]{2,}")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\[(])")
MIN_CLAIM_WORDS = 6  # shorter sentences ("See Table 2.") are not claims
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*%?")
STOPWORDS = frozenset(
    "the and for with that this from are was were which their these those than into have has had been its "
    "not but can may also such more most other each both between over under only while when where then".split())


def words(text: str) -> list[str]:
    return _WORD.findall(" ".join(chunk for is_code, chunk in iter_prose(text) if not is_code))


def content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in STOPWORDS}


def sentences(text: str) -> list[str]:
    prose = "".join(chunk if not is_code else "\n\n" for is_code, chunk in iter_prose(text))
    out = []
    for paragraph in re.split(r"\n\s*\n", prose):  # a hard-wrapped paragraph is one run of sentences
        lines = [line.strip() for line in paragraph.splitlines() if line.strip() and not line.lstrip().startswith("|")]
        out += [s.strip() for s in _SENTENCE.split(" ".join(lines)) if len(s.split()) >= MIN_CLAIM_WORDS]
    return out


def _cites(sentence: str, article: Article) -> bool:
    labels, unresolved = _cited_labels(sentence, article.references)
    return bool(labels or unresolved or _NUMERIC_CITE.search(sentence))


def passage_index(doc: Document) -> PassageIndex:
    """A corpus document's BM25 passages, built once per process (the pipeline's cache, under an eval key)."""
    return index_for("eval", doc.paper_id, lambda: (doc.text, passage_spans(doc.text)))


def _cited_sentences(article: Article, corpus: Sequence[Document]) -> Iterator[tuple[str, list[Document]]]:
    """Every sentence of the article with the corpus documents it cites (in citation order, each once);
    sentences that cite no mapped document are skipped."""
    docs = {d.paper_id: d for d in corpus}
    by_label = {r.label: r.paper_id for r in article.references}
    for section in article.sections:
        for sentence in sentences(section.text):
            labels, _ = _cited_labels(sentence, article.references)
            cited = [docs[pid] for pid in dict.fromkeys(by_label.get(x) for x in labels) if pid in docs]
            if cited:
                yield sentence, cited


def lexical_support(article: Article, corpus: Sequence[Document], passages: int = 2) -> list[float]:
    """Per cited claim (a sentence naming mapped sources): the best share of its content words found in one
    of the best passages of a source it cites."""
    scores = []
    for sentence, cited in _cited_sentences(article, corpus):
        query = _plain(sentence)
        need = content_words(query)
        if not need:
            continue
        best = 0.0
        for doc in cited:
            for p in passage_index(doc).best(query, passages):
                best = max(best, len(need & content_words(p.text)) / len(need))
        scores.append(best)
    return scores


def numeric_support(article: Article, corpus: Sequence[Document]) -> list[float]:
    """Per cited sentence that states numbers: the share of its numbers that appear in a source it cites
    (a number attributed to a paper the paper does not contain is the commonest unfaithful claim)."""
    scores = []
    for sentence, cited in _cited_sentences(article, corpus):
        numbers = _NUMBER.findall(_AUTHOR_YEAR.sub(" ", _plain(sentence)))
        if numbers:
            found = [any(re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", d.text) for d in cited) for n in numbers]
            scores.append(sum(found) / len(found))
    return scores


def states_numbers(sentence: str) -> bool:
    """A sentence that states numbers of its own (citation markers and years in citations aside)."""
    return bool(_NUMBER.search(_AUTHOR_YEAR.sub(" ", _plain(sentence))))


def _plain(sentence: str) -> str:
    """A sentence without citation markers of any style."""
    if split_claims(sentence):
        sentence = claim_text(sentence)
    return _NUMERIC_CITE.sub(" ", sentence)


def offline_metrics(article: Article, corpus: Sequence[Document], *, seed: int = 0) -> dict[str, Estimate]:
    """Every offline metric of one article, each with its bootstrap interval over its items."""
    cited = [pid for s in article.sections for pid in s.cited]
    unresolved = sum(s.unresolved for s in article.sections)
    resolved = [1.0] * len(cited) + [0.0] * unresolved
    lengths = [len(words(s.text)) for s in article.sections if s.text.strip()]
    claims = [0.0 if _cites(x, article) else 1.0 for s in article.sections for x in sentences(s.text)]
    refs = [0.0 if r.paper_id is None else 1.0 for r in article.references]

    def single(value: float | None, n: int = 1) -> Estimate:
        return Estimate(value, value, value, n)

    spread = statistics.pstdev(lengths) / statistics.mean(lengths) if len(lengths) > 1 and statistics.mean(lengths) else None
    return {
        "citations_resolve": bootstrap(resolved, seed=seed),
        "corpus_coverage": single(len(set(cited)) / len(corpus) if corpus else None, len(corpus)),
        "reference_precision": bootstrap(refs, seed=seed),
        "sections": single(float(len(article.sections))),
        "outline_depth": single(float(max((s.level for s in article.sections), default=0))),
        "outline_breadth": single(float(sum(1 for s in article.sections if s.level == 1))),
        "words": single(float(sum(lengths))),
        "section_length_spread": single(spread, len(lengths)),
        "claims_without_citation": bootstrap(claims, seed=seed),
        "lexical_support": bootstrap(lexical_support(article, corpus), seed=seed),
        "numbers_in_sources": bootstrap(numeric_support(article, corpus), seed=seed),
    }


def layer_records(article: Article) -> list[dict]:
    """Our runs only: the best and mean judge score of every convolution layer and self-refine round."""
    out = []
    for r in (article.report or {}).get("entropy_history") or []:
        if r.get("kind") in ("layer", "refine"):
            step = f"layer {r['layer']}" if r["kind"] == "layer" else f"refine {(r.get('parts') or {}).get('round')}"
            out.append({"block": r["block"], "step": step, "best": r.get("best"), "mean": r.get("mean")})
    return out


def stage_records(article: Article) -> list[dict]:
    """Our runs only: each block's outline scores (J, H, E) and digest coverage, from the entropy history,
    so that a reader sees whether refinement improved the outline."""
    history = (article.report or {}).get("entropy_history") or []
    out = []
    for r in history:
        if r.get("kind") == "block":
            parts = r.get("parts") or {}
            out.append({"block": r["block"], "E": r.get("best"), "J": parts.get("J"), "H": parts.get("H"),
                        "coverage": parts.get("coverage")})
    return out
