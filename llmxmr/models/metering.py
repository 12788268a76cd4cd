"""Counting and pacing model calls: per-stage usage of one node, a per-role rate limiter, the slots of
the embedded server, and the requests in flight (so a stopping run can let paid answers land)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from llmxmr.models.specs import LOCAL_PARALLEL
from llmxmr.state.records import Failure, StageUsage


class UsageMeter:
    """Per node invocation: StageUsage per stage and Failure records (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: dict[str, StageUsage] = {}
        self.failures: list[Failure] = []

    def add(self, stage: str, **counts: int) -> None:
        with self._lock:
            usage = self._usage.setdefault(stage, StageUsage())
            for name, n in counts.items():
                setattr(usage, name, getattr(usage, name) + n)

    def fail(self, stage: str, unit: str, kind: str, message: str) -> None:
        with self._lock:
            self.failures.append(Failure(stage=stage, unit=unit, kind=kind, message=message))
            usage = self._usage.setdefault(stage, StageUsage())
            usage.failures += 1

    def note(self, stage: str, unit: str, kind: str, message: str) -> None:
        """A repair worth recording that is not a failure (the unit produced a usable answer)."""
        with self._lock:
            self.failures.append(Failure(stage=stage, unit=unit, kind=kind, message=message))
            usage = self._usage.setdefault(stage, StageUsage())
            usage.repairs += 1

    def as_usage(self) -> dict[str, dict]:
        with self._lock:
            return {stage: u.model_dump() for stage, u in self._usage.items()}

    def total_tokens(self) -> int:
        with self._lock:
            return sum(u.prompt_tokens + u.completion_tokens for u in self._usage.values())


class RateLimiter:
    """At most `per_minute` request starts per minute, evenly spaced (None = unlimited)."""

    def __init__(self, per_minute: int | None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


class TokenRateLimiter:
    """At most `per_minute` tokens (prompt + completion) per minute, with up to a minute's worth in a burst
    (a virtual-clock token bucket). A request takes its estimate before it is sent (its prompt plus its
    `max_tokens`, as providers count it) and `settle` corrects the estimate by the usage it reported."""

    def __init__(self, per_minute: int | None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sleep, self._clock = sleep, clock
        self._cost = 60.0 / per_minute if per_minute else 0.0  # seconds of the minute one token uses
        self._due = 0.0  # when every token taken so far is paid back
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> None:
        if not self._cost:
            return
        with self._lock:
            now = self._clock()
            self._due = max(now, self._due) + tokens * self._cost
            wait = self._due - 60.0 - now  # the bucket holds a minute's worth
        if wait > 0:
            self._sleep(wait)

    def settle(self, estimated: int, actual: int) -> None:
        if self._cost:
            with self._lock:
                self._due += (actual - estimated) * self._cost


_SLOTS: dict[str, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def server_slots(spec: str) -> threading.BoundedSemaphore | None:
    """The embedded server answers LOCAL_PARALLEL requests at once; more would queue inside llama.cpp and
    spend their request timeout waiting. One semaphore per local model in this process."""
    if not (spec == "local" or spec.startswith("gguf:")):
        return None
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(spec, threading.BoundedSemaphore(LOCAL_PARALLEL))


_IN_FLIGHT = 0
_IN_FLIGHT_DONE = threading.Condition()


_REQUEST_CAP: threading.BoundedSemaphore | None = None


@contextlib.contextmanager
def request_cap(limit: int | None) -> Iterator[None]:
    """One limit on requests in flight for every run of this process (several surveys at once share one
    server); each run's max_concurrency still bounds its own. None: no process-wide limit."""
    global _REQUEST_CAP
    previous, _REQUEST_CAP = _REQUEST_CAP, (None if limit is None else threading.BoundedSemaphore(max(1, limit)))
    try:
        yield
    finally:
        _REQUEST_CAP = previous


@contextlib.contextmanager
def _in_flight() -> Iterator[None]:
    global _IN_FLIGHT
    cap = _REQUEST_CAP
    if cap is not None:
        cap.acquire()  # before counting: a request waiting for its turn has not been sent
    try:
        with _IN_FLIGHT_DONE:
            _IN_FLIGHT += 1
        try:
            yield
        finally:
            with _IN_FLIGHT_DONE:
                _IN_FLIGHT -= 1
                _IN_FLIGHT_DONE.notify_all()
    finally:
        if cap is not None:
            cap.release()


_SENT = 0
_SENT_LOCK = threading.Lock()


@contextlib.contextmanager
def sending() -> Iterator[None]:
    """Around one request on the wire (not while it waits for its slot or backs off): what progress shows."""
    global _SENT
    with _SENT_LOCK:
        _SENT += 1
    try:
        yield
    finally:
        with _SENT_LOCK:
            _SENT -= 1


def requests_in_flight() -> int:
    """Model requests of this process sent and waiting for their answer right now."""
    with _SENT_LOCK:
        return _SENT


def wait_for_requests_in_flight(timeout: float) -> bool:
    """Wait until every request already sent has been answered and recorded (or failed).

    When one branch fails, LangGraph raises while sibling branches still wait for their (paid) answers;
    closing the store before they land would make a resume pay for them again. True when none is left."""
    deadline = time.monotonic() + timeout
    with _IN_FLIGHT_DONE:
        while _IN_FLIGHT > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _IN_FLIGHT_DONE.wait(left)
    return True
