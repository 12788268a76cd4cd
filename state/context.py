"""Runtime settings of a run: the `Context` a caller passes, and the resolved `Settings` saved in state.

`Context` is what LangGraph Studio shows as the configuration form, so every field carries a description.
Fields whose default depends on the mode default to None and are filled in by `resolve_settings`, so that
`mode="reference"` reproduces the reference's knobs unless the caller sets a knob explicitly.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from llmxmr.models.providers import MODEL_FORMS

Mode = Literal["default", "reference"]


def _f(default: Any, description: str) -> Any:
    return field(default=default, metadata={"description": description})


@dataclass(kw_only=True)
class Context:
    """Settings of one llmxmr run (all optional; unset knobs take the mode's defaults)."""

    mode: Mode = _f("default", "'default' (improved method) or 'reference' (reproduces the published implementation).")
    model: str = _f("local", f"Model for every role unless a role sets its own: {MODEL_FORMS}.")
    base_url: str | None = _f(None, "Base URL of an OpenAI-compatible server (vLLM, Ollama, LM Studio) for openai: models.")
    reader_model: str | None = _f(None, "Model of the reader role (map, digest); defaults to `model`.")
    planner_model: str | None = _f(None, "Model of the planner role (group, skeleton, feedback, merge, modify, critique).")
    judge_model: str | None = _f(None, "Model of the judge role (entropy scoring); defaults to `model`.")
    writer_model: str | None = _f(None, "Model of the writer role (sections, polish, charts, repairs); defaults to `model`.")
    verifier_model: str | None = _f(None, "Model of the verifier role (citation checks); defaults to the judge's model.")
    group_size: int | None = _f(None, "Papers per topic group (reference 3).")
    skeleton_group_size: int | None = _f(None, "Groups per local skeleton draft (reference 3).")
    kernel_width: int | None = _f(None, "Suggestions merged by one convolution unit (reference 3).")
    units: int | None = _f(None, "Units per sampling layer (reference 10).")
    top_k: int | None = _f(None, "Suggestions kept after each layer (reference 6).")
    max_layers: int | None = _f(None, "Convolution layers per block, layer 0 not counted (reference 6).")
    max_blocks: int | None = _f(None, "Refinement blocks at most (reference 1).")
    refine_rounds: int | None = _f(None, "Self-refine rounds per block (reference 3).")
    best_of: int | None = _f(None, "Candidates per self-refine round (reference 3).")
    epsilon: float | None = _f(None, "Smallest score gain (0-10 scale) that counts as progress for the stop rules.")
    patience: int | None = _f(None, "Layers in a row without an epsilon gain before the layers stop (default mode).")
    entropy_lambda: float | None = _f(None, "Weight of the judge score J against structural entropy H (reference 1).")
    digest_input: Literal["fulltext", "notes"] | None = _f(
        None, "What the outline digest reads: the paper's 'fulltext' (reference) or its map 'notes' (default)."
    )
    charts: bool | None = _f(None, "Ask the writer for mermaid charts/tables in one extra call (reference: always).")
    verify_citations: bool | None = _f(
        None, "Check every cited claim against the cited paper's best passages, repair what fails once, and mark "
        "what is still unsupported (default mode: on; reference: off).")
    unsupported_claims: Literal["mark", "remove"] = _f(
        "mark", "What happens to a claim its sources still do not support after the repair: 'mark' it [unverified] or 'remove' it.")
    verify_passages: int = _f(2, "Passages of the cited paper the verifier reads per claim (BM25-ranked).")
    judge_revisions: bool | None = _f(
        None, "The judge reads each candidate as a revision of its block's start outline, shown first (a prefix a "
        "provider's prompt cache serves); false: every outline in full (default mode: on; reference: off).")
    incremental_digest: bool | None = _f(
        None, "After a block (or a person's edit) a paper is read again only for the sections that are new or whose "
        "title or construction changed; its digest of the others is kept (default mode: on; reference: off, "
        "every paper read against the whole outline).")
    follow_links: bool = _f(False, "Folder corpus: also read symbolic links that point outside the folder "
                            "(skipped and reported by default).")
    language: str = _f("en", "Language of the article.")
    seed: int = _f(0, "Seed of every random draw (grouping fallback, sampling, shuffles).")
    max_concurrency: int = _f(8, "Model calls in flight at once (LangGraph max_concurrency).")
    context_window: int | None = _f(None, "Input budget in tokens of one call; defaults per model (8192 for local).")
    max_output_tokens: int | None = _f(None, "Largest completion of one call in tokens; defaults per model.")
    request_timeout: float | None = _f(
        None, "Seconds before one model request times out, counted from when it is sent; defaults per model. "
        "The embedded local/gguf server is asked after this long whether it is still working on the request: it is "
        "given up only when the server says it works on nothing.")
    temperature: float = _f(0.0, "Temperature of ordinary calls.")
    candidate_temperature: float = _f(0.7, "Temperature of best-of candidates (identical prompts at 0 give identical answers).")
    max_total_tokens: int | None = _f(None, "Budget: prompt + completion tokens of the whole run (None = unlimited).")
    max_calls: int | None = _f(None, "Budget: model calls of the whole run, retries and repairs included (None = unlimited).")
    requests_per_minute: int | None = _f(None, "Rate limit per model in requests per minute (None = unlimited).")
    tokens_per_minute: int | None = _f(
        None, "Rate limit per model in prompt + completion tokens per minute, as providers count them (None = unlimited).")
    max_repairs: int = _f(2, "Re-asks of a model whose output is malformed before the unit is recorded as failed.")
    batch: str = _f("", "Stages sent as one OpenAI Batch API job per round (half price, answers within 24 h): "
                    "'map', 'digest' or 'map,digest'; openai: models only. Empty: ordinary calls.")
    batch_poll_seconds: float = _f(30.0, "Seconds between two looks at a waiting batch job's status.")
    review_outline: bool = _f(
        False,
        "Pause before writing so a person can inspect and edit the final outline (a LangGraph interrupt: needs a "
        "checkpointer; resume with Command(resume=the edited outline, or True to keep it)). A changed structure is re-digested.",
    )


MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "reference": dict(
        group_size=3, skeleton_group_size=3, kernel_width=3, units=10, top_k=6, max_layers=6, max_blocks=1,
        refine_rounds=3, best_of=3, epsilon=0.0, patience=10**6, entropy_lambda=1.0, digest_input="fulltext",
        charts=True, verify_citations=False, judge_revisions=False, incremental_digest=False,
    ),
    "default": dict(
        group_size=3, skeleton_group_size=3, kernel_width=3, units=10, top_k=6, max_layers=6, max_blocks=3,
        refine_rounds=3, best_of=3, epsilon=0.1, patience=2, entropy_lambda=0.7, digest_input="notes",
        charts=False, verify_citations=True, judge_revisions=True, incremental_digest=True,
    ),
}


_CONTEXT_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Context)}
# Examples for the settings whose default is None in every mode (no limit, per model, inherited).
_EXAMPLES: dict[str, Any] = {
    "base_url": "http://localhost:8000/v1", "context_window": 8192, "max_output_tokens": 1024,
    "request_timeout": 300, "max_total_tokens": 2000000, "max_calls": 500, "requests_per_minute": 60,
    "tokens_per_minute": 200000, **{f"{r}_model": "local" for r in ("reader", "planner", "judge", "writer", "verifier")},
}


class Settings(BaseModel):
    """Every knob resolved to a concrete value; saved in state and in survey.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode
    model: str
    base_url: str | None
    reader_model: str
    planner_model: str
    judge_model: str
    writer_model: str
    group_size: int
    skeleton_group_size: int
    kernel_width: int
    units: int
    top_k: int
    max_layers: int
    max_blocks: int
    refine_rounds: int
    best_of: int
    epsilon: float
    patience: int
    entropy_lambda: float
    digest_input: Literal["fulltext", "notes"]
    charts: bool
    language: str
    seed: int
    max_concurrency: int
    context_window: int | None
    max_output_tokens: int | None
    request_timeout: float | None
    temperature: float
    candidate_temperature: float
    max_total_tokens: int | None
    max_calls: int | None
    requests_per_minute: int | None
    tokens_per_minute: int | None = None  # a default: settings saved before this field existed still load
    max_repairs: int
    review_outline: bool = False  # a default, so that settings saved before this field existed still load
    # Defaults, so that settings saved before the citation check existed still load (and keep it off).
    verifier_model: str = ""
    verify_citations: bool = False
    unsupported_claims: Literal["mark", "remove"] = "mark"
    verify_passages: int = 2
    follow_links: bool = False  # a default, so that settings saved before this field existed still load
    batch: str = ""  # defaults, so that settings saved before batch mode existed still load
    batch_poll_seconds: float = 30.0
    judge_revisions: bool = False  # a default: settings saved before this field existed still load (outlines in full)
    incremental_digest: bool = False  # a default: settings saved before this field existed still load (full passes)

    @property
    def batch_stages(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.batch.split(",") if s.strip())

    def model_for(self, role: str) -> str:
        if role == "verifier":
            return self.verifier_model or self.judge_model
        return getattr(self, f"{role}_model")


class SettingsError(ValueError):
    """A setting has an unknown name or an invalid value."""


CONTEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Context))


def context_help() -> list[tuple[str, str, str]]:
    """(name, default, description) of every Context field, for `llmxmr settings` and `--help`."""
    out = []
    for f in fields(Context):
        out.append((f.name, repr(f.default), f.metadata.get("description", "")))
    return out


# What a setting whose default is None in both modes means, for `llmxmr settings`.
_NONE_MEANS: dict[str, str] = {
    "base_url": "none (OpenAI's API)",
    **{f"{r}_model": "= model" for r in ("reader", "planner", "judge", "writer")},
    "verifier_model": "= judge_model",
    "context_window": "per model: local/gguf 4096, openai 128000, google_genai 1000000",
    "max_output_tokens": "per model: local/gguf 1024, openai 16384, google_genai 8192",
    "request_timeout": "per model: openai and google_genai 120 s; local/gguf 180 s between checks that the server still works",
    **{k: "unlimited" for k in ("max_total_tokens", "max_calls", "requests_per_minute", "tokens_per_minute")},
}


def _shown(value: Any) -> str:
    if value == "":
        return "off"  # an empty list setting (batch): nothing is on
    return json.dumps(value) if isinstance(value, (bool, type(None))) else str(value)


def effective_defaults() -> list[tuple[str, str, str, str]]:
    """(name, default in mode=default, default in mode=reference, description) of every setting: what a
    run uses when the setting is not given, never a bare None."""
    rows = []
    for f in fields(Context):
        values = [MODE_DEFAULTS[mode].get(f.name, f.default) for mode in ("default", "reference")]
        shown = [_NONE_MEANS.get(f.name, "none") if v is None else _shown(v) for v in values]
        if f.name == "mode":
            shown = ["default", "reference"]
        rows.append((f.name, shown[0], shown[1], f.metadata.get("description", "")))
    return rows


def resolve_settings(context: Context | dict[str, Any] | None) -> Settings:
    """Fill mode-dependent defaults and role models; validate ranges."""
    if context is None:
        values: dict[str, Any] = dataclasses.asdict(Context())
    elif isinstance(context, Context):
        values = dataclasses.asdict(context)
    else:
        unknown = sorted(set(context) - set(CONTEXT_FIELDS))
        if unknown:
            raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; valid names: {', '.join(CONTEXT_FIELDS)}")
        values = dataclasses.asdict(Context(**context))
    mode = values["mode"]
    if not isinstance(mode, str) or mode not in MODE_DEFAULTS:
        raise SettingsError(f"mode must be 'default' or 'reference', not {mode!r}. Fix: --mode default")
    for key, default in MODE_DEFAULTS[mode].items():
        if values.get(key) is None:
            values[key] = default
    for role in ("reader", "planner", "judge", "writer"):
        values[f"{role}_model"] = values.get(f"{role}_model") or values["model"]
    values["verifier_model"] = values.get("verifier_model") or values["judge_model"]
    check_ranges(values)
    return _settings(values)


# Valid ranges, checked before any paid call (a negative timeout or token limit would only fail deep inside
# a request, once per retry). (low, high, optional): optional settings may be None (no limit / per model).
_INT_RANGES: dict[str, tuple[int, int | None, bool]] = {
    **{k: (1, None, False) for k in ("group_size", "skeleton_group_size", "kernel_width", "units", "top_k",
                                     "best_of", "max_concurrency", "verify_passages")},
    **{k: (0, None, False) for k in ("max_layers", "max_blocks", "refine_rounds", "patience", "max_repairs")},
    **{k: (1, None, True) for k in ("requests_per_minute", "tokens_per_minute", "context_window",
                                    "max_output_tokens", "max_calls", "max_total_tokens")},
    "seed": (0, None, False),
}
_FLOAT_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "entropy_lambda": (0.0, 1.0, False), "epsilon": (0.0, None, False),
    "temperature": (0.0, 2.0, False), "candidate_temperature": (0.0, 2.0, False),
}


def _range_text(low: float, high: float | None, optional: bool) -> str:
    text = f"within [{low:g}, {high:g}]" if high is not None else f"at least {low:g}"
    return text + (" (or None: no limit / the model's default)" if optional else "")


def setting_fix(key: str) -> str:
    """The fix of a bad value: the setting with a valid example (its default where it has one)."""
    example = MODE_DEFAULTS["default"].get(key, _CONTEXT_DEFAULTS.get(key))
    if example is None:
        example = _EXAMPLES.get(key, 1)
    shown = json.dumps(example) if not isinstance(example, str) else example
    return f"Fix: e.g. --set {key}={shown} (`llmxmr settings` lists every setting)"


def _check_number(key: str, value: Any, low: float, high: float | None, optional: bool, integer: bool) -> None:
    if value is None and optional:
        return
    kind = "a whole number" if integer else "a number"
    fix = setting_fix(key)
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or (integer and not float(value).is_integer())):
        raise SettingsError(f"{key} must be {kind} {_range_text(low, high, optional)}, not {value!r}. {fix}")
    if value < low or (high is not None and value > high):
        if low == 1 and high is None and not optional:
            raise SettingsError(f"{key} must be at least 1, not {value}. {fix}")
        if low == 0 and high is None:
            raise SettingsError(f"{key} must not be negative, not {value}. {fix}")
        raise SettingsError(f"{key} must be {_range_text(low, high, optional)}, not {value!r}. {fix}")


def check_base_url(value: Any) -> None:
    """An http(s) URL with a host and a valid port, or None."""
    from urllib.parse import urlsplit

    if value is None:
        return
    fix = "Fix: give the server's address, e.g. --base-url http://localhost:8000/v1"
    if not isinstance(value, str):
        raise SettingsError(f"base_url must be a URL string, not {value!r}. {fix}")
    shown = redact_url(value)
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise SettingsError(f"base_url {shown!r} has an invalid port (1-65535). {fix}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"base_url {shown!r} is not an http:// or https:// URL with a host. {fix}")
    if port == 0:
        raise SettingsError(f"base_url {shown!r} has an invalid port (1-65535). {fix}")


def redact_url(url: str | None) -> str | None:
    """The URL without a password (http://user:pass@host -> http://user:***@host): safe to store and print."""
    from urllib.parse import urlsplit, urlunsplit

    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@", 1)[-1]
    if parts.password is None and parts.username is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:***@" if parts.password is not None else "***@"
    return urlunsplit(parts._replace(netloc=user + host))


def check_ranges(values: dict[str, Any]) -> None:
    """Every setting within its valid range, with a one-line message naming the setting and the fix."""
    for key, (low, high, optional) in _INT_RANGES.items():
        if key in values:
            _check_number(key, values[key], low, high, optional, integer=True)
    for key, (low, high, optional) in _FLOAT_RANGES.items():
        if key in values:
            _check_number(key, values[key], low, high, optional, integer=False)
    if values.get("request_timeout") is not None:
        _check_number("request_timeout", values["request_timeout"], 0.001, None, True, integer=False)
    if "digest_input" in values and values["digest_input"] not in ("fulltext", "notes"):
        raise SettingsError(f"digest_input must be 'fulltext' or 'notes', not {values.get('digest_input')!r}. "
                            + setting_fix("digest_input"))
    check_base_url(values.get("base_url"))
    if values.get("batch_poll_seconds") is not None:
        _check_number("batch_poll_seconds", values["batch_poll_seconds"], 0.0, None, False, integer=False)
    check_batch(values)


BATCH_STAGES = ("map", "digest")  # stages that can wait for the Batch API (no answer feeds the next call)


def check_batch(values: dict[str, Any]) -> None:
    raw = values.get("batch") or ""
    if isinstance(raw, (list, tuple)) and all(isinstance(x, str) for x in raw):
        raw = values["batch"] = ",".join(raw)
    if not isinstance(raw, str):
        raise SettingsError(f"batch must be a comma-separated list of stages, not {raw!r}. "
                            "Fix: --batch map,digest, or leave it out")
    stages = [s.strip() for s in raw.split(",") if s.strip()]
    bad = [s for s in stages if s not in BATCH_STAGES]
    if bad:
        raise SettingsError(f"batch: unknown stage(s) {', '.join(map(repr, bad))}; batch mode takes "
                            f"{' and '.join(BATCH_STAGES)}. Fix: --batch map,digest, or leave it out")
    if stages and values.get("mode") == "reference" and "map" in stages:
        raise SettingsError("batch: mode=reference has no map stage; use --batch digest")
    if stages:
        reader = values.get("reader_model") or values.get("model") or ""
        if not str(reader).startswith("openai:"):
            raise SettingsError(f"batch: the Batch API needs an openai: reader model (OpenAI or a compatible "
                                f"server that implements /v1/batches), not {reader!r}. Fix: --model openai:NAME, "
                                "or leave --batch out")


def _settings(values: dict[str, Any]) -> Settings:
    try:
        return Settings(**values)
    except ValidationError as exc:  # one line naming the field, not pydantic's multi-line report
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise SettingsError(f"{where}: {err.get('msg')} (got {err.get('input')!r}). {setting_fix(where)}") from None


def parse_setting_value(raw: str) -> Any:
    """`--set FIELD=VALUE`: VALUE is JSON when it parses, else a string."""
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return raw


def apply_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """Resume with overrides (a new base URL, another model): re-validate the merged values."""
    unknown = sorted(set(overrides) - set(CONTEXT_FIELDS))
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; valid names: {', '.join(CONTEXT_FIELDS)}")
    merged = settings.model_dump()
    inherited_verifier = merged.get("verifier_model") in ("", merged["judge_model"]) and "verifier_model" not in overrides
    if "model" in overrides:
        # A new --model replaces role models that were only inherited from the old one.
        for role in ("reader", "planner", "judge", "writer"):
            if merged[f"{role}_model"] == merged["model"] and f"{role}_model" not in overrides:
                merged[f"{role}_model"] = overrides["model"]
    merged.update(overrides)
    if inherited_verifier:  # the verifier follows the judge unless it was set on its own
        merged["verifier_model"] = merged["judge_model"]
    check_ranges(merged)
    return _settings(merged)
