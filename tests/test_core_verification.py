"""The citation check's counts of a whole article from its sections' claim records (core.verification)."""

from __future__ import annotations

from llmxmr.core.verification import article_counts, section_counts


def claim(status: str, cited: int, first: list[str], repaired: bool = False) -> dict:
    return {"status": status, "cited": [f"p{i}" for i in range(cited)], "repaired": repaired,
            "checks": [{"paper_id": f"p{i}", "verdict": v, "round": 2 if repaired else 1} for i, v in enumerate(first)]}


RECORDS = [claim("supported", 2, ["supported", "partial"]), claim("unsupported", 1, ["unsupported"]),
           claim("supported", 1, ["supported"], repaired=True), claim("unchecked", 2, ["supported"])]


def test_counts_of_a_section_from_its_records() -> None:
    assert section_counts(RECORDS, supported_before=3, repaired=False) == {
        "claims_checked": 4, "pairs": 6, "supported_before": 3, "supported_after": 2, "unsupported": 1,
        "unchecked": 1, "repaired_sections": 0}


def test_records_stored_without_counts_give_them_back() -> None:
    counts = section_counts(RECORDS)
    # first-round verdicts all supported or partial, and not written by the repair: claims 1 and 4
    assert (counts["supported_before"], counts["repaired_sections"]) == (2, 1)
    assert section_counts(RECORDS[:2])["repaired_sections"] == 0


def test_the_article_adds_its_sections_up() -> None:
    total = article_counts([section_counts(RECORDS), section_counts(RECORDS[:1]), {}])
    assert (total["claims_checked"], total["pairs"], total["supported_before"], total["repaired_sections"]) == (5, 8, 3, 1)
