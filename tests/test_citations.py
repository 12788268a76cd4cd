from llmxmr.citations import (
    Reference,
    find_citations,
    iter_prose,
    merge_adjacent,
    number_citations,
    repair_id,
    validate_citations,
)

A = "attention-is-all-you-need-a0fef0"
B = "bert-pretraining-1b2c3d"
C = "gpt-3-ffffff"
ALLOWED = {A, B, C}


# ---------------------------------------------------------------- prose vs code


def test_iter_prose_roundtrip_and_code_kinds():
    text = "a `[@x]` b\n```mermaid\nA[@y] --> B\n```\n~~~~\n[@z]\n~~~~\nend ``code ` tick`` [@" + A + "]\n"
    pieces = list(iter_prose(text))
    assert "".join(c for _, c in pieces) == text
    code = [c for is_code, c in pieces if is_code]
    assert code == ["`[@x]`", "```mermaid\nA[@y] --> B\n```\n", "~~~~\n[@z]\n~~~~\n", "``code ` tick``"]


def test_unclosed_fence_runs_to_end_and_stray_backtick_is_text():
    assert find_citations("it`s [@a]\n```\n[@b]\n") == ["a"]
    assert find_citations("```\n[@a]\n~~~\n[@b]") == []  # ~~~ does not close ```


def test_find_citations_order_groups_and_code():
    text = f"x [@{A}; @{B}] y [@{C}, @{A}] `[@no]`\n```\n[@no2]\n```\n[@{B}]"
    assert find_citations(text) == [A, B, C, A, B]


def test_non_markers_are_not_citations():
    assert find_citations("see [1], [see above], [a, b], [x](http://y), email a@b.c, [@link](url)") == []


# ---------------------------------------------------------------- validation


def test_valid_text_unchanged():
    text = f"Claim [@{A}]. Two [@{A}; @{B}]."
    assert validate_citations(text, ALLOWED) == (text, [])


def test_unknown_id_removed_cleanly():
    fixed, problems = validate_citations("Claim [@foo]. Next [@bar] word, and [@baz], end.", ALLOWED)
    assert fixed == "Claim. Next word, and, end."
    assert problems == ["removed unknown citation @foo", "removed unknown citation @bar", "removed unknown citation @baz"]


def test_removed_marker_at_line_start_and_in_group():
    fixed, _ = validate_citations(f"[@nope] Starts here.\n- item [@nope]\n  [@nope] indented\nx [@nope; @{B}].", ALLOWED)
    assert fixed == f"Starts here.\n- item\n  indented\nx [@{B}]."
    assert "[]" not in fixed and "  ." not in fixed


def test_near_misses_repaired():
    text = f"[@Attention-Is-All-You-Need-A0FEF0] [@attention-is-all-you-need] [@bert_pretraining] [@gpt-3-fffff] [@bert-pretrainig-1b2c3d] [@wrong-slug-ffffff]"
    fixed, problems = validate_citations(text, ALLOWED)
    assert fixed == f"[@{A}] [@{A}] [@{B}] [@{C}] [@{B}] [@{C}]"
    assert problems == [
        f"repaired @Attention-Is-All-You-Need-A0FEF0 -> @{A}",
        f"repaired @attention-is-all-you-need -> @{A}",
        f"repaired @bert_pretraining -> @{B}",
        f"repaired @gpt-3-fffff -> @{C}",
        f"repaired @bert-pretrainig-1b2c3d -> @{B}",
        f"repaired @wrong-slug-ffffff -> @{C}",
    ]


def test_ambiguous_near_miss_is_removed():
    allowed = {"survey-aaaaaa", "survey-bbbbbb"}
    assert repair_id("survey", allowed) is None
    fixed, problems = validate_citations("x [@survey].", allowed)
    assert fixed == "x." and problems == ["removed unknown citation @survey"]


def test_short_ids_are_not_guessed():
    assert repair_id("ab", {"doc-123456"}) is None
    assert repair_id("xyz", {"doc-123456"}) is None


def test_id_outside_section_evidence_removed_not_repaired():
    other = "attention-is-all-you-need-b0fef0"  # a real paper of the corpus, one edit away from A
    fixed, problems = validate_citations(f"x [@{other}] y", {A}, known={A, other})
    assert fixed == "x y"
    assert problems == [f"removed citation @{other} (not in this section's evidence)"]
    assert validate_citations(f"x [@{other.upper()}] y", {A}, known={A, other})[0] == "x y"
    # Without `known` the same id is only a near miss of an allowed id.
    assert validate_citations(f"x [@{other}] y", {A})[0] == f"x [@{A}] y"


def test_code_and_mermaid_are_never_touched():
    text = "```mermaid\ngraph TD; A[@nope] --> B[@x]\n```\nInline `[@nope]` and\n~~~\n[@nope]\n~~~\n"
    assert validate_citations(text, ALLOWED) == (text, [])


def test_bracketed_non_markers_untouched():
    text = "As in [1] and [see above], pick [a, b] or [x](http://e.org)."
    assert validate_citations(text, ALLOWED) == (text, [])


def test_grouped_forms_normalised_and_deduplicated():
    fixed, problems = validate_citations(f"x [@{A}, @{B}; @{A}] y [@{A} @{C}]", ALLOWED)
    assert fixed == f"x [@{A}; @{B}] y [@{A}; @{C}]"
    assert problems == []


def test_stray_text_in_marker_reported():
    fixed, problems = validate_citations(f"x [@{A}, p. 3].", ALLOWED)
    assert fixed == f"x [@{A}]."
    assert problems == [f"removed stray text 'p. 3' from citation [@{A}, p. 3]"]


def test_trailing_punctuation_in_id():
    assert validate_citations(f"x [@{A}.]", ALLOWED)[0] == f"x [@{A}]"


# ---------------------------------------------------------------- merging


def test_merge_adjacent():
    text = f"a [@{A}][@{B}] b [@{A}] [@{C}] [@{A}] c [@{B}; @{B}] `[@{A}][@{B}]`"
    assert merge_adjacent(text) == f"a [@{A}; @{B}] b [@{A}; @{C}] c [@{B}] `[@{A}][@{B}]`"


def test_merge_does_not_cross_lines():
    text = f"a [@{A}]\n[@{B}] b"
    assert merge_adjacent(text) == text


# ---------------------------------------------------------------- numbering


PAPERS = {A: ("Attention", "https://a"), B: ("BERT", None), C: ("GPT-3", "https://c")}


def test_numbering_by_first_appearance_across_texts():
    texts = [f"First [@{B}]. Then [@{C}; @{A}].", f"Again [@{A}; @{B}] and [@{B}]."]
    rendered, refs = number_citations(texts, PAPERS)
    assert rendered == ["First [1]. Then [2, 3].", "Again [1, 3] and [1]."]
    assert refs == [
        Reference(n=1, paper_id=B, title="BERT", url=None),
        Reference(n=2, paper_id=C, title="GPT-3", url="https://c"),
        Reference(n=3, paper_id=A, title="Attention", url="https://a"),
    ]


def test_numbering_skips_code_and_unknown_ids():
    rendered, refs = number_citations([f"x [@ghost]. y [@ghost; @{A}] `[@{B}]`\n```\n[@{C}]\n```\n"], PAPERS)
    assert rendered == [f"x. y [1] `[@{B}]`\n```\n[@{C}]\n```\n"]
    assert [r.paper_id for r in refs] == [A]


def test_numbering_empty():
    assert number_citations([], PAPERS) == ([], [])
    assert number_citations(["no citations"], PAPERS) == (["no citations"], [])


def test_unclosed_markers_are_removed_and_reported_outside_code() -> None:
    text = "Evidence: [@a-1b2c3d] and [@speculative_decoding-with_\nnext [1] [see] `[@x`\n```\n[@kept\n```\n"
    fixed, problems = validate_citations(text, {"a-1b2c3d"})
    assert "[@speculative" not in fixed
    assert "[@a-1b2c3d]" in fixed and "[1] [see]" in fixed
    assert "`[@x`" in fixed and "[@kept" in fixed  # code is never touched
    assert problems == ["removed unclosed citation '[@speculative_decoding-with_'"]
