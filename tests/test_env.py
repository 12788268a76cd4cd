"""Env: what a finished run leaves behind in a long-lived process (a parent agent running many surveys)."""

from __future__ import annotations

from types import SimpleNamespace

from langgraph.store.memory import InMemoryStore

from llmxmr.nodes import env as env_mod
from llmxmr.nodes.env import Env
from llmxmr.state.context import resolve_settings
from llmxmr.testing.fake_model import ScriptedChatModel


def test_release_drops_the_runs_callers_and_local_store_only():
    env, store, settings = Env(ScriptedChatModel()), InMemoryStore(), resolve_settings({})
    a, b = env.caller(store, settings, "run-a"), env.caller(store, settings, "run-b")
    assert env.caller(store, settings, "run-a") is a, "one caller per run while it runs"
    env.release(SimpleNamespace(store=store), "run-a")
    assert env.caller(store, settings, "run-b") is b
    assert env.caller(store, settings, "run-a") is not a, "a released run's caller is gone"

    local = env.store(SimpleNamespace(store=None), "run-c")  # no store given: a per-run in-memory one
    env.release(SimpleNamespace(store=None), "run-c")
    assert "run-c" not in env_mod._LOCAL_STORES and env.store(SimpleNamespace(store=None), "run-c") is not local
    env.release(SimpleNamespace(store=None), "run-c")
