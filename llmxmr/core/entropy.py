"""Entropy scoring parts (METHOD §3): structural entropy H, the judge's expected digit J, and E.

J is on 0-10, H on 0-1, E = λ·J + (1-λ)·10·H on 0-10.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from llmxmr.state.records import Digest

DIGIT_SCALE = 10 / 9  # a digit 0-9 mapped onto the 0-10 scale of the reference rubric


def structural_entropy(leaf_ids: Sequence[str], digests: Sequence[Digest]) -> tuple[float, float, float]:
    """(H, H_norm, coverage) of how evenly the papers' digests spread over the outline's leaves.

    m_s = digests with non-blank content for leaf s; H_norm = -Σ p ln p / ln L (0 if L = 1 or Σm = 0);
    coverage = share of digests with at least one non-blank leaf; H = H_norm · coverage.
    """
    leaves = list(dict.fromkeys(leaf_ids))  # a repeated id is one leaf
    m = [sum(1 for d in digests if d.sections.get(s, "").strip()) for s in leaves]
    total = sum(m)
    if len(leaves) <= 1 or total == 0:
        h_norm = 0.0
    else:
        h_norm = -sum((c / total) * math.log(c / total) for c in m if c) / math.log(len(leaves))
    covered = sum(1 for d in digests if any(d.sections.get(s, "").strip() for s in leaves))
    coverage = covered / len(digests) if digests else 0.0
    return h_norm * coverage, h_norm, coverage


def _field_re(field: str) -> re.Pattern[str]:
    """A digit field of a JSON answer ("score": 7 or "score": "7") or a <score>7</score> tag."""
    return re.compile(rf'"{field}"\s*:\s*"?\s*(\d)|<{field}>\s*(\d)')


_SCORE_RE = _field_re("score")


def _single_digit(token: str) -> int | None:
    t = token.strip()
    return int(t) if len(t) == 1 and t in "0123456789" else None


def digit_distribution(logprob_content: Sequence[Mapping[str, Any]], text: str, field: str = "score") -> list[float] | None:
    """p(0) .. p(9) of the digit of the answer's `field` (the judge's score) from token log-probabilities,
    or None.

    `logprob_content` is the OpenAI chat `logprobs.content` list. The digit's position is found in the
    concatenated tokens (keys may be split over tokens: '"sc', 'ore', '":', ' ', '7'); the last score
    field counts (JSON keeps the last duplicate). At that token the top alternatives that are single
    digits are renormalised. None when the field or its token is not found, the token is not a lone digit,
    no digit alternatives are listed, or the digit disagrees with the one parsed from `text` (the tokens
    are then not this response's).
    """
    found = digit_distributions(logprob_content, text, field)
    return found[-1] if found else None


def digit_distributions(logprob_content: Sequence[Mapping[str, Any]], text: str, field: str) -> list[list[float] | None]:
    """`digit_distribution` of every occurrence of `field`, in order (a list of verdicts has one each); []
    when the tokens and the text do not have the same number of occurrences (then they are not this
    response's)."""
    pattern = _SCORE_RE if field == "score" else _field_re(field)
    tokens = [str(t.get("token", "")) for t in logprob_content]
    matches = list(pattern.finditer("".join(tokens)))
    parsed = [int(m.group(1) if m.group(1) is not None else m.group(2)) for m in pattern.finditer(text or "")]
    if not matches or (parsed and len(parsed) != len(matches)):
        return []
    starts, end = [], 0
    for tok in tokens:
        starts.append(end)
        end += len(tok)
    out: list[list[float] | None] = []
    for k, match in enumerate(matches):
        offset = match.start(1 if match.group(1) is not None else 2)
        pos = next((i for i in range(len(tokens)) if starts[i] <= offset < starts[i] + len(tokens[i])), -1)
        chosen = _single_digit(tokens[pos]) if pos >= 0 else None
        if chosen is None or (parsed and parsed[k] != chosen):
            out.append(None)
            continue
        out.append(_renormalised(logprob_content[pos].get("top_logprobs") or []))
    return out


def _renormalised(alternatives: Sequence[Mapping[str, Any]]) -> list[float] | None:
    probs = [0.0] * 10
    for alt in alternatives:
        d = _single_digit(str(alt.get("token", "")))
        lp = alt.get("logprob")
        if d is not None and isinstance(lp, (int, float)) and not math.isnan(lp):
            probs[d] += math.exp(lp)  # " 7" and "7" are the same digit
    mass = sum(probs)
    return None if mass <= 0 else [x / mass for x in probs]


def expected_digit_score(logprob_content: Sequence[Mapping[str, Any]], text: str) -> tuple[float, float] | None:
    """(J, uncertainty) of the judge's digit distribution (`digit_distribution`), or None:
    J = (10/9)·Σ p(d)·d, uncertainty = -Σ p ln p (nats)."""
    p = digit_distribution(logprob_content, text)
    return None if p is None else digit_score(p)


def digit_score(p: Sequence[float]) -> tuple[float, float]:
    """(J, uncertainty) of a distribution over the digits 0-9."""
    j = DIGIT_SCALE * sum(pd * d for d, pd in enumerate(p))
    uncertainty = max(0.0, -sum(pd * math.log(pd) for pd in p if pd > 0))  # no "-0.0"
    return j, uncertainty


def compact_logprobs(logprob_content: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """What `expected_digit_score` reads, and no more: every token's text (to find the score field), and
    the alternatives only at lone-digit tokens. A judge answer's full top-20 list is ~25 KB; this is ~1 KB,
    and the durable response record keeps it for every judge call."""
    if logprob_content is None:
        return None
    out: list[dict[str, Any]] = []
    for entry in logprob_content:
        token = str(entry.get("token", ""))
        if _single_digit(token) is None:
            out.append({"token": token})
        else:
            out.append({"token": token, "logprob": entry.get("logprob"),
                        "top_logprobs": [{"token": str(a.get("token", "")), "logprob": a.get("logprob")}
                                         for a in entry.get("top_logprobs") or []]})
    return out


def parsed_digit_score(digit: int) -> float:
    """The fallback J when no log-probabilities are available: digit × 10/9."""
    if not 0 <= digit <= 9:
        raise ValueError(f"score digit must be 0-9, got {digit}")
    return digit * DIGIT_SCALE


def combine(J: float, H: float | None, lam: float) -> float:
    """E = λ·J + (1-λ)·10·H. Without H (an outline that has no digests yet) E is J, whatever λ:
    treating a missing H as 0 would punish every undigested candidate by (1-λ)·10."""
    if H is None:
        return J
    return lam * J + (1 - lam) * 10 * H
