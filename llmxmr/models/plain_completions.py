"""`ChatOpenAI` without the OpenAI SDK's typed walks of every request and response.

For each chat completion the SDK's `create` walks the request against its TypedDicts (`maybe_transform`:
~80 type checks for a system + user message, all no-ops for plain chat messages), then builds pydantic
models of the answer (validating with pydantic every token's log-probabilities of a judge answer), which
`ChatOpenAI` turns straight back into dicts (`model_dump`). That was most of the client's CPU per call
(bench/cpu_per_call.py). `lean(chat)` gives the chat model a `client` that sends the same request through
the SDK's own `post` (the same URL, headers, body, time-outs, errors and status exceptions) and hands
`ChatOpenAI` the answer's JSON as parsed, which it reads like the dump of the SDK's models.

Streaming, the parse path (`response_format=` given as a class) and anything else unusual go to the SDK's
`create` unchanged.
"""

from __future__ import annotations

from typing import Any

import openai

try:  # private helpers of the SDK: a release without them falls back to the SDK's own `create`
    from openai._base_client import make_request_options
    from openai._legacy_response import to_raw_response_wrapper
except ImportError:  # pragma: no cover - depends on the installed SDK
    make_request_options = to_raw_response_wrapper = None

_UNSET = (openai.NotGiven, openai.Omit)


class PlainChatCompletions:
    """The `chat.completions` resource that `ChatOpenAI` calls (`create`, `with_raw_response.create`)."""

    def __init__(self, root: openai.OpenAI) -> None:
        self._root = root
        self._sdk = root.chat.completions
        self.with_raw_response = _RawResponse(self)

    def create(self, *, extra_headers: Any = None, extra_query: Any = None, extra_body: Any = None,
               timeout: Any = openai.NOT_GIVEN, **params: Any) -> Any:
        if params.get("stream") or "response_format" in params:
            return self._sdk.create(extra_headers=extra_headers, extra_query=extra_query, extra_body=extra_body,
                                    timeout=timeout, **params)
        body = {k: v for k, v in params.items() if not isinstance(v, _UNSET)}  # as the SDK drops them
        options = make_request_options(extra_headers=extra_headers, extra_query=extra_query,
                                       extra_body=extra_body, timeout=timeout)
        # cast_to=object: the SDK returns the JSON it parsed, no models built.
        return self._root.post("/chat/completions", body=body, cast_to=object, options=options)


class _RawResponse:
    def __init__(self, plain: PlainChatCompletions) -> None:
        self.create = to_raw_response_wrapper(plain.create)


def lean(chat: Any) -> Any:
    """The ChatOpenAI client `chat` with the plain `client` (sync calls; async ones stay the SDK's)."""
    if make_request_options is not None and getattr(chat, "root_client", None) is not None:
        chat.client = PlainChatCompletions(chat.root_client)
    return chat
