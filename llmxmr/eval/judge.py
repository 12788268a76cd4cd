"""The evaluator's judge metrics: what is judged (items), one judged item (one model call), and the values
it yields. Structure and relevance rate the whole article, language and criticalness each section (0-10:
the judge's digit 0-9, as its expected value from logprobs where the provider returns them, × 10/9);
faithfulness is claim precision: each cited claim checked against the best passages of the sources it
cites (the citation check's retriever and verify prompt): 1 supported, 0.5 partially, 0 not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmxmr.core.entropy import digit_distribution, digit_score, parsed_digit_score
from llmxmr.eval.articles import Article, _cited_labels
from llmxmr.eval.offline import _plain, passage_index, sentences
from llmxmr.limits import input_budget
from llmxmr.models.specs import ModelSpec
from llmxmr.models.tokens import truncate_to_tokens
from llmxmr.nodes.model_calls import ModelCalls
from llmxmr.prompts.evaluate import ARTICLE_CRITERIA, SECTION_CRITERIA
from llmxmr.prompts.verify import by_paper
from llmxmr.stages import STAGES
from llmxmr.state.records import Document
from llmxmr.state.responses import verdicts_reply_for

JUDGE, VERIFY, CLAIMS = STAGES["eval_judge"], STAGES["verify"], STAGES["eval_claims"]
SAME_CLAIM = 0.8  # content-word Jaccard at which two listed claims are one
CLAIMS_PER_CALL = 20
SUPPORT = {2: 1.0, 1: 0.5, 0: 0.0}
# faithfulness: per cited claim, the worst of its citations; citation precision: per citation; numeric
# claims: faithfulness of the claims that state numbers. All three come from the same verify calls.
JUDGE_METRICS = [*ARTICLE_CRITERIA, *SECTION_CRITERIA, "faithfulness", "citation_precision", "numeric_claims",
                 "density"]
BLOCK_STRUCTURE = "block_structure"  # our runs: the structure rating of each block's outline (a stage view)


@dataclass(frozen=True)
class Item:
    metric: str
    section: int  # -1: the whole article
    claims: tuple[tuple[int, str, str], ...] = ()  # faithfulness: (section, sentence, cited paper id)


def judge_items(article: Article, corpus_ids: set[str]) -> list[Item]:
    """Everything one judging pass of one article asks: 2 article criteria, 2 per section, and the cited
    claims in batches."""
    items = [Item(m, -1) for m in ARTICLE_CRITERIA]
    items += [Item(BLOCK_STRUCTURE, block) for block, _ in article.block_outlines]
    items += [Item(m, i) for i, s in enumerate(article.sections) if s.text.strip()
              for m in (*SECTION_CRITERIA, "density")]
    by_label = {r.label: r.paper_id for r in article.references}
    claims = []
    for i, s in enumerate(article.sections):
        for sentence in sentences(s.text):
            labels, _ = _cited_labels(sentence, article.references)
            for pid in dict.fromkeys(by_label[x] for x in labels if by_label.get(x) in corpus_ids):
                claims.append((i, sentence, pid))
    items += [Item("faithfulness", -1, tuple(claims[k:k + CLAIMS_PER_CALL])) for k in range(0, len(claims), CLAIMS_PER_CALL)]
    return items


def _article_view(article: Article, room: int) -> str:
    outline = "\n".join("  " * (s.level - 1) + f"- {s.heading}" for s in article.sections)
    body = "\n\n".join(f"## {s.heading}\n{s.text}" for s in article.sections)
    return f"Outline:\n{outline}\n\nArticle (beginning):\n" + truncate_to_tokens(body, max(200, room))[0]


def judge_item(calls: ModelCalls, article: Article, corpus: dict[str, Document], item: Item, *, seed: int,
               temperature: float | None) -> list[Any]:
    """One model call; its values: one rating, a section's listed claims (density), or one record per judged
    citation (faithfulness). [] when the judge's answer was unusable."""
    settings = calls.settings
    unit = f"{article.system}:{item.metric}:{item.section}:seed{seed}"
    logprobs = ModelSpec.parse(settings.model_for(JUDGE.role)).supports_logprobs
    if item.metric == "faithfulness":
        return _faithfulness(calls, corpus, item, unit, seed, temperature, logprobs)
    room = input_budget(settings, JUDGE) - 400
    if item.metric == "density":  # the section's claims: counted per article once they are all listed
        section = article.sections[item.section]
        reply = calls.ask(CLAIMS, unit, CLAIMS.prompt(article.title, section.heading,
                                                     truncate_to_tokens(section.text, room)[0], language=settings.language),
                          candidate=seed, temperature=temperature)
        return [] if reply is None else [c.strip() for c in reply.value.claims if c.strip()]
    criterion = item.metric
    if item.metric == BLOCK_STRUCTURE:  # `section` is the block whose outline is rated for structure
        criterion, heading = "structure", f"the outline after block {item.section}"
        body = truncate_to_tokens(dict(article.block_outlines)[item.section], room)[0]
    elif item.section < 0:
        heading, body = "", _article_view(article, room)
    else:
        section = article.sections[item.section]
        heading, body = section.heading, truncate_to_tokens(section.text, room)[0]
    reply = calls.ask(JUDGE, unit, JUDGE.prompt(criterion, article.title, heading, body, language=settings.language),
                      candidate=seed, temperature=temperature, logprobs=logprobs)
    if reply is None:
        return []
    p = digit_distribution(reply.logprobs, reply.text) if reply.logprobs else None
    return [digit_score(p)[0] if p is not None else parsed_digit_score(reply.value.score)]


def _faithfulness(calls: ModelCalls, corpus: dict[str, Document], item: Item, unit: str, seed: int,
                  temperature: float | None, logprobs: bool) -> list[dict[str, Any]]:
    shown = []
    for _, sentence, pid in item.claims:
        doc = corpus[pid]
        passages = passage_index(doc).best(_plain(sentence), calls.settings.verify_passages)
        shown.append((_plain(sentence), pid, doc.title, [p.text for p in passages]))
    reply = calls.ask(VERIFY, unit, VERIFY.prompt(shown, language=calls.settings.language), candidate=seed,
                      temperature=temperature, logprobs=logprobs,  # the claim and passage numbers shown, only
                      schema=verdicts_reply_for(len(shown), max((len(b.passages) for b in by_paper(shown)), default=0)))
    if reply is None:
        return []
    verdicts = {v.claim: v.verdict for v in reply.value.verdicts if 1 <= v.claim <= len(shown)}
    return [{"section": item.claims[k - 1][0], "claim": item.claims[k - 1][1], "value": SUPPORT[verdicts[k]]}
            for k in sorted(verdicts)]


def distinct_claims(claims: Sequence[str]) -> list[str]:
    """The claims without repeats: two claims are one when their content words overlap by SAME_CLAIM
    (Jaccard), so a claim restated in two sections counts once."""
    from llmxmr.eval.offline import content_words

    kept: list[tuple[str, set[str]]] = []
    for claim in claims:
        words = content_words(claim)
        if not words:
            continue
        if any(len(words & other) / len(words | other) >= SAME_CLAIM for _, other in kept):
            continue
        kept.append((claim, words))
    return [c for c, _ in kept]


def density(claims: Sequence[str], words: int) -> float | None:
    """Distinct atomic claims per 1,000 words of the article."""
    return None if words <= 0 else 1000 * len(distinct_claims(claims)) / words


def block_structure(judgements: Sequence[dict[str, Any]], system: int) -> dict[int, float]:
    """Our runs: the judge's mean structure rating of each block's outline, over the passes."""
    by_block: dict[int, list[float]] = {}
    for j in judgements:
        if j["system"] == system and j["metric"] == BLOCK_STRUCTURE:
            by_block.setdefault(j["section"], []).extend(j["values"])
    return {b: sum(v) / len(v) for b, v in by_block.items() if v}


def judge_metadata(settings: Any, usage: dict[str, dict[str, int]], price_in: float | None,
                   price_out: float | None, reported: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """Who judged, with which instructions, at what cost: what a reader needs to trust or redo the figures."""
    from llmxmr.prompts.evaluate import prompt_hashes

    calls = sum(u.get("calls", 0) for u in usage.values())
    prompt = sum(u.get("prompt_tokens", 0) for u in usage.values())
    completion = sum(u.get("completion_tokens", 0) for u in usage.values())
    cost = None
    if price_in is not None and price_out is not None:
        cost = round((prompt * price_in + completion * price_out) / 1e6, 6)
    reported = reported or {}
    return {"model": settings.judge_model, "verifier_model": settings.model_for("verifier"),
            # what the provider said answered (a dated model version, where it reports one)
            "reported_models": sorted({name for spec in (settings.judge_model, settings.model_for("verifier"))
                                       for name in reported.get(spec, set())}),
            "base_url": settings.base_url, "prompt_hashes": prompt_hashes(), "calls": calls,
            "cached": sum(u.get("cached", 0) for u in usage.values()), "prompt_tokens": prompt,
            "completion_tokens": completion, "cost": cost}


def values_by_metric(judgements: Sequence[dict[str, Any]], system: int, words: int) -> dict[str, list[float]]:
    """Each judge metric's values for one system: ratings per item and pass; density once per pass (the
    distinct claims of all its sections)."""
    from llmxmr.eval.offline import states_numbers

    out: dict[str, list[float]] = {m: [] for m in JUDGE_METRICS}
    listed: dict[int, list[str]] = {}
    claims: dict[tuple[int, int, str], float] = {}  # (pass, section, claim) -> its worst citation
    for j in judgements:
        if j["system"] != system or j["metric"] == BLOCK_STRUCTURE:
            continue
        if j["metric"] == "density":
            listed.setdefault(j["seed"], []).extend(j["values"])
        elif j["metric"] == "faithfulness":
            for v in j["values"]:
                out["citation_precision"].append(v["value"])
                key = (j["seed"], v["section"], v["claim"])
                claims[key] = min(claims.get(key, 1.0), v["value"])
        else:
            out[j["metric"]].extend(j["values"])
    out["faithfulness"] = list(claims.values())
    out["numeric_claims"] = [v for (_, _, claim), v in claims.items() if states_numbers(claim)]
    out["density"] = [d for d in (density(claims_, words) for claims_ in listed.values()) if d is not None]
    return out
