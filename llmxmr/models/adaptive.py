"""How many requests one model gets in flight at once, adapted to how fast its server answers (AIMD).

A server that is slower than we assumed is not a failed server: its time-outs, 429s and 503s halve the
limit (multiplicative decrease), and every `limit` successes in a row raise it by one (additive increase) up
to `max_concurrency`. A request waits for its slot here, before it is sent, so its time-out counts the
server's work rather than the time it spent queued behind our own other requests.

One congestion signal per round: requests sent under a limit that was already lowered do not lower it
again (a burst of time-outs from one overfull round halves the limit once, not once per request).

A limit that congested is remembered: the limit climbs back to one below it, and past that only after
`REPROBE_AFTER` successes in a row. Plain AIMD would climb straight back into the time-outs every few
answers, and each time-out wastes the server's work on a request that is then sent again (a server that
finishes a request just as the client gives up has done that work for nothing).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REPROBE_AFTER = 50  # successes in a row at the remembered safe limit before trying one more

class AdaptiveLimit:
    def __init__(self, start: int, ceiling: int, on_change: Any = None) -> None:
        self.ceiling = max(1, ceiling)
        self.start = max(1, min(start, self.ceiling))
        self.limit = self.start
        self.lowest = self.start
        self.decreases = 0
        self.increases = 0
        self._in_flight = 0
        self._successes = 0
        self._round = 0  # bumped by every decrease
        self._safe = self.ceiling  # one below the lowest limit that congested
        self._cond = threading.Condition()
        self._on_change = on_change  # called (outside the lock) with the report after the limit changes

    @contextmanager
    def slot(self) -> Iterator[int]:
        """Hold one of the `limit` slots while a request is in flight; yields the round it was sent in."""
        with self._cond:
            while self._in_flight >= self.limit:
                self._cond.wait()
            self._in_flight += 1
            sent_in = self._round
        try:
            yield sent_in
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def success(self) -> None:
        with self._cond:
            self._successes += 1
            needed = REPROBE_AFTER if self.limit >= self._safe else self.limit
            if self._successes < needed or self.limit >= self.ceiling:
                return
            self._successes = 0
            self.limit += 1
            self.increases += 1
            self._cond.notify_all()
        self._changed()

    def congestion(self, sent_in: int) -> bool:
        """A time-out, 429 or 503 of a request sent in round `sent_in`; True when it lowered the limit."""
        with self._cond:
            if sent_in != self._round or self.limit == 1:
                self._successes = 0
                return False
            self._safe = max(1, min(self._safe, self.limit - 1))
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self.decreases += 1
            self._round += 1
            self._successes = 0
        self._changed()
        return True

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def report(self) -> dict[str, int]:
        with self._cond:
            return {"start": self.start, "max": self.ceiling, "settled": self.limit, "lowest": self.lowest,
                    "decreases": self.decreases, "increases": self.increases}

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.report())
