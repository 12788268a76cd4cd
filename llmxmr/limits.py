"""Token limits of one call: how much output each stage may ask for and how much input fits."""

from __future__ import annotations

from llmxmr.models.specs import ModelSpec
from llmxmr.state.context import Settings

# Completion budget per stage, sized for the bounded response schemas (a small model pretty-prints JSON).
STAGE_OUTPUT = {
    "map": 700, "reduce_notes": 700, "group": 800, "skeleton": 4000, "merge_skeleton": 8000,
    "digest": 900, "feedback": 500, "judge": 500, "merge_suggestions": 500, "modify": 900,
    "modify_rewrite": 8000, "critique": 500, "write_section": 900, "polish": 1000, "charts": 700,
}
ROLE_OF = {
    "map": "reader", "reduce_notes": "reader", "digest": "reader", "group": "planner", "skeleton": "planner",
    "merge_skeleton": "planner", "feedback": "planner", "merge_suggestions": "planner", "modify": "planner",
    "critique": "planner", "judge": "judge", "write_section": "writer", "polish": "writer", "charts": "writer",
}
# Default mode keeps every call's input bounded whatever N is (the reference makes one call of any size).
# merge_skeleton: 8 drafts / 48k tokens per call: 7 drafts of a 60-paper run (~6.5k tokens each) merge in one
# call; 250 papers (28 drafts) in 2 levels of parallel calls.
FAN_IN = {"group": 100, "merge_skeleton": 8}  # titles per group call; drafts per merge call
MAX_INPUT = {"merge_skeleton": 48_000, "write_section": 8_000}  # tokens, default mode

MARGIN = 0.15  # tiktoken undercounts small models' tokenizers (~11% for SmolLM2): keep a margin


def output_tokens(settings: Settings, stage: str) -> int:
    spec = ModelSpec.parse(settings.model_for(ROLE_OF[stage.replace("modify_rewrite", "modify")]))
    want = STAGE_OUTPUT[stage]
    cap = settings.max_output_tokens or spec.max_output_tokens
    return max(64, min(want, cap))


def context_window(settings: Settings, role: str) -> int:
    return settings.context_window or ModelSpec.parse(settings.model_for(role)).context_window


def input_budget(settings: Settings, stage: str) -> int:
    """Prompt tokens one call of `stage` may use, after its output and a tokenizer margin."""
    role = ROLE_OF[stage.replace("modify_rewrite", "modify")]
    window = context_window(settings, role)
    return max(256, int((window - output_tokens(settings, stage)) * (1 - MARGIN)))


MAP_PROMPT_OVERHEAD = 350  # tokens of the map prompt around the document text


def chunks_of(text: str, settings: Settings) -> list[str]:
    """The token-counted chunks one document is mapped in (deterministic: prepare and map agree)."""
    from llmxmr.models.tokens import split_by_tokens

    size = max(200, input_budget(settings, "map") - MAP_PROMPT_OVERHEAD)
    return split_by_tokens(text, size) or [text]


def chunk_bounds(text: str, settings: Settings) -> list[tuple[int, int]]:
    """Character spans of the chunks: computed once at prepare, so map tasks never re-tokenize the text."""
    spans, pos = [], 0
    for chunk in chunks_of(text, settings):
        start = text.find(chunk, pos)
        if start < 0:  # the splitter normalised whitespace: fall back to the running position
            start = pos
        end = min(len(text), start + len(chunk))
        spans.append((start, end))
        pos = end
    return spans or [(0, len(text))]
