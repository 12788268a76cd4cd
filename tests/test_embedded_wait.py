"""Requests to the embedded server are not timed out while the server works on them (issue 15): the wait
asks the server after each time-out and gives up only when it says it works on nothing. No model runs here:
the request and the server's answer about its slots are stand-ins."""

from __future__ import annotations

import time

import pytest

from llmxmr.models.local_server import invoke_while_busy


def _slow(seconds: float, value: str = "answer"):
    def call() -> str:
        time.sleep(seconds)
        return value

    return call


def test_a_busy_server_is_waited_for_past_the_timeout() -> None:
    asked = []
    assert invoke_while_busy(_slow(0.3), 0.05, lambda: asked.append(1) or True) == "answer"
    assert len(asked) >= 3  # asked every time-out, never gave up


def test_a_server_that_cannot_say_is_trusted() -> None:
    assert invoke_while_busy(_slow(0.2), 0.05, lambda: None) == "answer"


def test_an_idle_server_means_the_request_was_lost() -> None:
    with pytest.raises(TimeoutError, match="reports no request at work"):
        invoke_while_busy(_slow(5.0), 0.05, lambda: False)


def test_the_request_error_reaches_the_caller() -> None:
    def fail() -> str:
        raise ConnectionError("gone")

    with pytest.raises(ConnectionError, match="gone"):
        invoke_while_busy(fail, 1.0, lambda: True)
