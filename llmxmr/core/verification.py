"""The citation check's counts (survey.json `verification`) of a whole article, from its sections' claim
records. The check stores, per section, its claims with their final verdicts and that section's counts;
an update checks only the sections it writes again, so the article's counts are summed over every
section of the version: the re-checked ones and the kept ones with the counts of the version that
checked them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

COUNTS = ("claims_checked", "pairs", "supported_before", "supported_after", "unsupported", "unchecked",
          "repaired_sections")
SUPPORTED = ("supported", "partial")
_RANK = {"unsupported": 0, "unchecked": 1, "partial": 2, "supported": 3}


def worst(a: str | None, b: str) -> str:
    """A claim is as good as its worst-supported citation: a wrong citation in a group is still wrong."""
    return b if a is None or _RANK[b] < _RANK[a] else a


def section_counts(records: Sequence[Mapping[str, Any]], supported_before: int | None = None,
                   repaired: bool | None = None) -> dict[str, int]:
    """One section's counts from its claim records (`status`, `cited`, `repaired`, `checks`).

    `supported_before` (claims supported or partly as first written) and `repaired` (the section went
    to the repair) are what the check knew; records stored before it kept them give them back: a claim
    the repair did not touch whose first-round verdicts were supported or partial, and a section with a
    repaired claim."""
    counts = dict.fromkeys(COUNTS, 0)
    for r in records:
        counts["claims_checked"] += 1
        counts["pairs"] += len(r.get("cited") or [])
        counts["supported_after"] += r["status"] in SUPPORTED
        counts["unsupported"] += r["status"] == "unsupported"
        counts["unchecked"] += r["status"] == "unchecked"
    if supported_before is None:
        supported_before = 0
        for r in records:
            first = None
            for check in r.get("checks") or []:
                if check.get("round", 1) == 1:
                    first = worst(first, check["verdict"])
            supported_before += not r.get("repaired") and first in SUPPORTED
    if repaired is None:
        repaired = any(r.get("repaired") for r in records)
    counts["supported_before"] = int(supported_before)
    counts["repaired_sections"] = int(bool(repaired))
    return counts


def article_counts(sections: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The article's counts: its sections' counts added up."""
    total = dict.fromkeys(COUNTS, 0)
    for counts in sections:
        for name in COUNTS:
            total[name] += int(counts.get(name, 0))
    return total
