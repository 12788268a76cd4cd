"""Token limits of one call: how much output a stage may ask for and how much input fits (from the stage
table, `llmxmr.stages`, and the role's model)."""

from __future__ import annotations

from llmxmr.models.specs import ModelSpec
from llmxmr.stages import STAGES, Stage
from llmxmr.state.context import Settings

MARGIN = 0.15  # tiktoken undercounts small models' tokenizers (~11% for SmolLM2): keep a margin


def _stage(stage: Stage | str) -> Stage:
    return STAGES[stage] if isinstance(stage, str) else stage


def output_tokens(settings: Settings, stage: Stage | str) -> int:
    row = _stage(stage)
    spec = ModelSpec.parse(settings.model_for(row.role))
    cap = settings.max_output_tokens or spec.max_output_tokens
    return max(64, min(row.output_tokens, cap))


def context_window(settings: Settings, role: str) -> int:
    return settings.context_window or ModelSpec.parse(settings.model_for(role)).context_window


def input_budget(settings: Settings, stage: Stage | str) -> int:
    """Prompt tokens one call of `stage` may use, after its output and a tokenizer margin."""
    row = _stage(stage)
    window = context_window(settings, row.role)
    return max(256, int((window - output_tokens(settings, row)) * (1 - MARGIN)))


MAP_PROMPT_OVERHEAD = 350  # tokens of the map prompt around the document text


def chunks_of(text: str, settings: Settings) -> list[str]:
    """The token-counted chunks one document is mapped in (deterministic: prepare and map agree)."""
    from llmxmr.models.tokens import split_by_tokens

    size = max(200, input_budget(settings, "map") - MAP_PROMPT_OVERHEAD)
    return split_by_tokens(text, size) or [text]


# A document longer than this is split segment by segment (segments cut at whitespace), so that splitting a
# 200 MB document holds one segment's pieces at a time, not the whole text's; a chunk never spans segments.
SEGMENT_CHARS = 2_000_000


def chunk_bounds(text: str, settings: Settings) -> list[tuple[int, int]]:
    """Character spans of the chunks: computed once at prepare, so map tasks never re-tokenize the text."""
    from llmxmr.models.tokens import text_slices

    spans: list[tuple[int, int]] = []
    for a, b in text_slices(text, SEGMENT_CHARS) if len(text) > SEGMENT_CHARS else [(0, len(text))]:
        segment, pos = text[a:b], 0
        for chunk in chunks_of(segment, settings):
            start = segment.find(chunk, pos)
            if start < 0:  # the splitter normalised whitespace: fall back to the running position
                start = pos
            end = min(len(segment), start + len(chunk))
            spans.append((a + start, a + end))
            pos = end
    return spans or [(0, len(text))]
