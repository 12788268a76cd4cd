"""Several systems' articles on equal terms: one corpus, the same metrics, one table (`eval.md`, `eval.json`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmxmr.corpus import CorpusError, documents_from_papers, load_surveys
from llmxmr.eval.articles import Article, load_article
from llmxmr.eval.offline import layer_records, offline_metrics, stage_records
from llmxmr.eval.stats import Estimate
from llmxmr.state.records import Document

EVAL_SCHEMA_VERSION = "1.0"
# (key, what the table calls it, which way is better)
METRICS: list[tuple[str, str, str]] = [
    ("citations_resolve", "citations that resolve to a reference", "higher"),
    ("reference_precision", "references found in the corpus", "higher"),
    ("corpus_coverage", "corpus documents cited", "higher"),
    ("lexical_support", "lexical support of cited claims", "higher"),
    ("numbers_in_sources", "numbers found in the cited sources", "higher"),
    ("claims_without_citation", "claims without a citation", "lower"),
    ("sections", "sections", "-"),
    ("outline_depth", "outline depth", "-"),
    ("outline_breadth", "top-level sections", "-"),
    ("words", "words", "-"),
    ("section_length_spread", "section length spread (CV)", "lower"),
]


def load_corpus(path: str | Path, survey_index: int = 0) -> list[Document]:
    """The corpus an article was written from. A JSONL paper may carry its text as `txt` (ours, the
    reference's corpus) or `content` (what the reference's evaluator reads): both are accepted."""
    path = Path(path)
    if path.is_file() and path.suffix == ".jsonl":
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not 0 <= survey_index < len(lines):
            raise CorpusError(f"{path} has {len(lines)} survey(s); survey_index {survey_index} does not exist")
        record = json.loads(lines[survey_index])
        papers = [{**p, "txt": p.get("txt") or p.get("content") or ""} if isinstance(p, dict) else p
                  for p in record.get("papers") or []]
        docs, _ = documents_from_papers(papers, f"{path.name}:{survey_index + 1}")
        return docs
    return load_surveys(path)[survey_index].documents


def evaluate(paths: Sequence[str | Path], corpus: Sequence[Document], *, seed: int = 0,
             names: Sequence[str] | None = None) -> dict[str, Any]:
    """eval.json: per system its metrics (mean and 95 % interval), unmapped references and stages."""
    systems = [system_result(load_article(p, corpus, system=names[i] if names else None), corpus, seed)
               for i, p in enumerate(paths)]
    return assemble(systems, len(corpus), seed)


def assemble(systems: list[dict[str, Any]], corpus_documents: int, seed: int,
             judge_metrics: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    """eval.json from the systems' results: the metric rows (the judge's first, when it rated) and the systems."""
    rows = [{"key": m, "label": f"judge: {m}", "better": "higher"} for m in judge_metrics]
    rows += [{"key": k, "label": label, "better": better} for k, label, better in METRICS]
    return {"schema_version": EVAL_SCHEMA_VERSION, "corpus_documents": corpus_documents, "seed": seed,
            "metrics": rows, "systems": systems, **extra}


def system_result(article: Article, corpus: Sequence[Document], seed: int) -> dict[str, Any]:
    """One system's offline metrics, unmapped references and (ours) stages."""
    metrics: dict[str, Estimate] = offline_metrics(article, corpus, seed=seed)
    return {"system": article.system, "source": article.source, "title": article.title,
            "metrics": {k: v.as_dict() for k, v in metrics.items()},
            "references": len(article.references),
            "unmapped_references": [r.text for r in article.unmapped],
            "stages": stage_records(article), "layers": layer_records(article)}


def _cell(m: dict[str, Any] | None) -> str:
    if not m or m.get("mean") is None:
        return "–"
    mean, low, high = m["mean"], m["low"], m["high"]
    digits = 0 if abs(mean) >= 100 else 2
    text = f"{mean:.{digits}f}"
    if low is not None and high is not None and (low != mean or high != mean):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def render(result: dict[str, Any]) -> str:
    """eval.md: one row per metric, one column per system."""
    systems = result["systems"]
    lines = ["# Evaluation", "",
             f"Corpus: {result['corpus_documents']} documents. Each cell: mean [bootstrap 95 % interval over the "
             f"metric's items] (seed {result['seed']}).", "",
             "| metric | better | " + " | ".join(s["system"] for s in systems) + " |",
             "|---|---|" + "---:|" * len(systems)]
    for m in result["metrics"]:
        lines.append(f"| {m['label']} | {m['better']} | "
                     + " | ".join(_cell(s["metrics"].get(m["key"])) for s in systems) + " |")
    for s in systems:
        if s["unmapped_references"]:
            lines += ["", f"**{s['system']}**: {len(s['unmapped_references'])} of {s['references']} references are "
                      "not in the corpus:", ""] + [f"- {t}" for t in s["unmapped_references"][:50]]
        if s["stages"]:
            lines += ["", f"**{s['system']}**, the outline per block (E = λ·J + (1−λ)·10·H; coverage = papers with a "
                      "digest for some leaf; judge: the evaluator's structure rating of that block's outline):", "",
                      "| block | E | J | H | coverage | judge |", "|---:|---:|---:|---:|---:|---:|"]
            lines += [f"| {r['block']} | {_f(r['E'])} | {_f(r['J'])} | {_f(r['H'])} | {_f(r['coverage'])} | "
                      f"{_f(r.get('judge_structure'))} |" for r in s["stages"]]
        if s.get("layers"):
            lines += ["", f"**{s['system']}**, the refinement loop (the pipeline judge's J of the candidates):", "",
                      "| block | step | best | mean |", "|---:|---|---:|---:|"]
            lines += [f"| {r['block']} | {r['step']} | {_f(r['best'])} | {_f(r['mean'])} |" for r in s["layers"]]
    return "\n".join(lines) + "\n"


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def write(result: dict[str, Any], outdir: str | Path) -> tuple[Path, Path]:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "eval.md", out / "eval.json"
    md.write_text(render(result), encoding="utf-8")
    js.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js
