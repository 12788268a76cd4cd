"""Structural entropy, expected digit score and E (METHOD §3)."""

from __future__ import annotations

import json
import math

import pytest

from llmxmr.core.entropy import (
    combine,
    compact_logprobs,
    expected_digit_score,
    parsed_digit_score,
    structural_entropy,
)
from llmxmr.state.records import Digest

LEAVES = ["s2", "s3", "s5", "s6"]


def dg(pid: str, **sections: str) -> Digest:
    return Digest(paper_id=pid, outline_key="k", sections=sections)


# --- structural entropy --------------------------------------------------------------------------------


def test_even_spread_full_coverage_is_one():
    # m = 2, 2, 2, 2 and every paper covered -> H = 1
    digests = [dg(f"p{i}", **{LEAVES[i % 4]: "content"}) for i in range(8)]
    H, H_norm, cov = structural_entropy(LEAVES, digests)
    assert (H, H_norm, cov) == (pytest.approx(1.0), pytest.approx(1.0), 1.0)


def test_all_in_one_leaf_is_zero():
    # m = 8, 0, 0, 0 -> H = 0
    digests = [dg(f"p{i}", s2="x") for i in range(8)]
    assert structural_entropy(LEAVES, digests) == (0.0, 0.0, 1.0)


def test_coverage_scales_H_and_blank_or_parent_content_does_not_count():
    digests = [
        dg("p1", s2="a", s3="b"),
        dg("p2", s5="c", s6="d"),
        dg("p3", s2="   \n"),  # blank after strip: not covered
        dg("p4", s1="parent-only content"),  # s1 is not a leaf: not covered
    ]
    H, H_norm, cov = structural_entropy(LEAVES, digests)
    assert H_norm == pytest.approx(1.0) and cov == 0.5 and H == pytest.approx(0.5)


def test_uneven_spread_matches_formula():
    digests = [dg("p1", s2="x", s3="x"), dg("p2", s2="x"), dg("p3", s2="x", s5="x")]
    m = [3, 1, 1, 0]
    p = [c / 5 for c in m if c]
    expected = -sum(x * math.log(x) for x in p) / math.log(4)
    H, H_norm, cov = structural_entropy(LEAVES, digests)
    assert H_norm == pytest.approx(expected) and cov == 1.0 and H == pytest.approx(expected)
    assert 0 < H < 1


def test_degenerate_cases():
    assert structural_entropy(["s1"], [dg("p", s1="x")]) == (0.0, 0.0, 1.0)  # L = 1
    assert structural_entropy(LEAVES, [dg("p")]) == (0.0, 0.0, 0.0)  # Σm = 0
    assert structural_entropy(LEAVES, []) == (0.0, 0.0, 0.0)
    assert structural_entropy([], [dg("p", s1="x")]) == (0.0, 0.0, 0.0)


# --- expected digit score ------------------------------------------------------------------------------


def tok(token: str, alts: dict[str, float] | None = None) -> dict:
    alts = alts if alts is not None else {token: 1.0}
    return {
        "token": token,
        "logprob": math.log(alts.get(token, 1e-9)),
        "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in alts.items()],
    }


def judge_tokens(digit_token: dict, prefix: str = '{"rationale": "Clear \\"score\\": 3 structure."') -> list[dict]:
    # tokens split across the key: '"sc' 'ore' '":' ' ' <digit> '}'
    return [tok(prefix), tok(', "sc'), tok("ore"), tok('":'), tok(" "), digit_token, tok("}")]


def text_of(tokens: list[dict]) -> str:
    return "".join(t["token"] for t in tokens)


def test_expected_digit_half_seven_half_eight():
    tokens = judge_tokens(tok("7", {"7": 0.5, "8": 0.5}))
    J, u = expected_digit_score(tokens, text_of(tokens))
    assert J == pytest.approx(7.5 * 10 / 9)
    assert u == pytest.approx(math.log(2))


def test_expected_digit_renormalises_over_digits_and_merges_spaced_tokens():
    # 0.2 of the mass on non-digits; " 9" and "9" are the same digit
    alts = {"6": 0.4, " 9": 0.2, "9": 0.2, "ten": 0.1, "**": 0.1}
    tokens = judge_tokens(tok("6", alts))
    J, u = expected_digit_score(tokens, text_of(tokens))
    assert J == pytest.approx((0.5 * 6 + 0.5 * 9) * 10 / 9)
    assert u == pytest.approx(math.log(2))


def test_certain_digit_has_zero_uncertainty():
    tokens = judge_tokens(tok("9", {"9": 1.0}))
    assert expected_digit_score(tokens, text_of(tokens)) == (pytest.approx(10.0), 0.0)


def test_digit_inside_a_combined_token_and_string_value():
    tokens = [tok('{"score": "'), tok("4", {"4": 0.25, "5": 0.75}), tok('"}')]
    J, _ = expected_digit_score(tokens, text_of(tokens))
    assert J == pytest.approx((0.25 * 4 + 0.75 * 5) * 10 / 9)


def test_score_tag_format():
    tokens = [tok("Good outline. <score>"), tok("3", {"3": 0.5, "1": 0.5}), tok("</score>")]
    J, _ = expected_digit_score(tokens, text_of(tokens))
    assert J == pytest.approx(2 * 10 / 9)


def test_escaped_key_inside_rationale_is_ignored():
    # the prefix rationale contains \"score\": 3 -- escaped, so not the field; the field is 8
    tokens = judge_tokens(tok("8", {"8": 1.0}))
    J, _ = expected_digit_score(tokens, text_of(tokens))
    assert J == pytest.approx(8 * 10 / 9)


def test_returns_none_when_not_usable():
    # no score field
    assert expected_digit_score([tok('{"rationale": "x"}')], "") is None
    # the token at the digit position is not a lone digit ("7}" merged)
    merged = [tok('{"score": '), tok("7}", {"7}": 1.0})]
    assert expected_digit_score(merged, text_of(merged)) is None
    # multi-digit number like 10 in one token
    ten = [tok('{"score": '), tok("10", {"10": 1.0})]
    assert expected_digit_score(ten, "") is None
    # no top_logprobs at that position
    bare = judge_tokens({"token": "7", "logprob": 0.0, "top_logprobs": []})
    assert expected_digit_score(bare, text_of(bare)) is None
    # alternatives are all non-digits
    odd = judge_tokens({"token": "7", "logprob": 0.0, "top_logprobs": [{"token": "x", "logprob": -0.1}]})
    assert expected_digit_score(odd, text_of(odd)) is None
    # the text says another digit: these are not this response's tokens
    tokens = judge_tokens(tok("7", {"7": 0.5, "8": 0.5}))
    assert expected_digit_score(tokens, '{"rationale": "r", "score": 3}') is None
    assert expected_digit_score([], "") is None


# --- parsed digit and E --------------------------------------------------------------------------------


def test_parsed_digit_score():
    assert parsed_digit_score(9) == pytest.approx(10.0)
    assert parsed_digit_score(0) == 0.0
    assert parsed_digit_score(7) == pytest.approx(70 / 9)
    with pytest.raises(ValueError):
        parsed_digit_score(10)


def test_combine():
    assert combine(8.0, 0.5, 0.7) == pytest.approx(0.7 * 8 + 0.3 * 5)
    assert combine(8.0, 0.5, 1.0) == pytest.approx(8.0)  # reference: λ = 1
    assert combine(8.0, 1.0, 0.0) == pytest.approx(10.0)
    assert combine(6.0, None, 0.7) == 6.0  # no H: E = J


def test_compact_logprobs_keeps_what_the_score_needs():
    tokens = judge_tokens(tok("6", {"6": 0.4, " 9": 0.2, "9": 0.2, "ten": 0.1, "**": 0.1}))
    compact = compact_logprobs(tokens)
    assert [t["token"] for t in compact] == [t["token"] for t in tokens]
    assert [("top_logprobs" in t) for t in compact] == [False, False, False, False, False, True, False]
    assert expected_digit_score(compact, text_of(tokens)) == expected_digit_score(tokens, text_of(tokens))
    assert len(json.dumps(compact)) < len(json.dumps(tokens))
    assert compact_logprobs(None) is None
