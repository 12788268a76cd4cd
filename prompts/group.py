"""Group: sort the papers by topic so that each group shares one theme."""

from __future__ import annotations

from llmxmr.prompts.common import document_block, json_only, messages

SYSTEM = """You organise the papers of a survey titled "{topic}" into topics.
Every paper number must appear in exactly one topic. Papers on the same theme go together."""


def group_papers(topic: str, titles: list[str], *, language: str = "en"):
    listing = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(titles))
    return messages("group", SYSTEM.format(topic=topic), document_block("paper-titles", "Papers", listing),
                    answer=json_only('{"topics": [{"name": "Cache eviction policies", "papers": [1, 4]}]} '
                                     "(an example: name the topics of these papers)"), language=language)
