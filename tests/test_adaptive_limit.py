"""The adaptive in-flight limit (AIMD) on its own: halving once per congested round, one step up per `limit`
successes, never above the ceiling or below one, and a slot is only granted under the current limit."""

from __future__ import annotations

import threading
import time

from llmxmr.models.adaptive import REPROBE_AFTER, AdaptiveLimit


def test_a_burst_of_timeouts_from_one_round_halves_once() -> None:
    limit = AdaptiveLimit(8, 8)
    rounds = []
    for _ in range(8):
        with limit.slot() as sent_in:
            rounds.append(sent_in)
    assert [limit.congestion(r) for r in rounds] == [True] + [False] * 7
    assert (limit.limit, limit.lowest, limit.decreases) == (4, 4, 1)
    with limit.slot() as later:  # a request sent under the lowered limit may lower it again
        pass
    assert limit.congestion(later) and limit.limit == 2


def test_successes_raise_it_additively_up_to_the_ceiling_and_never_below_one() -> None:
    limit = AdaptiveLimit(1, 3)
    with limit.slot() as r:
        pass
    assert not limit.congestion(r) and limit.limit == 1  # the floor
    for _ in range(1):
        limit.success()
    assert limit.limit == 2
    for _ in range(2):
        limit.success()
    assert limit.limit == 3
    for _ in range(10):
        limit.success()
    assert limit.report() == {"start": 1, "max": 3, "settled": 3, "lowest": 1, "decreases": 0, "increases": 2}


def test_start_is_capped_by_the_ceiling() -> None:
    assert AdaptiveLimit(16, 4).report()["start"] == 4


def test_slots_are_granted_only_under_the_limit() -> None:
    limit = AdaptiveLimit(2, 2)
    peak, now, lock = [0], [0], threading.Lock()

    def request() -> None:
        with limit.slot():
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
            time.sleep(0.02)
            with lock:
                now[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2 and limit.in_flight == 0


def test_changes_are_reported() -> None:
    seen = []
    limit = AdaptiveLimit(4, 4, on_change=seen.append)
    with limit.slot() as r:
        pass
    limit.congestion(r)
    assert seen and seen[-1]["settled"] == 2


def test_a_limit_that_congested_is_approached_again_only_after_a_long_run_of_successes() -> None:
    limit = AdaptiveLimit(4, 4)
    with limit.slot() as r:
        pass
    assert limit.congestion(r) and limit.limit == 2  # 4 congested: 3 is the highest limit believed safe
    for _ in range(2):
        limit.success()
    assert limit.limit == 3  # back up to the safe limit at the usual pace
    for _ in range(REPROBE_AFTER - 1):
        limit.success()
    assert limit.limit == 3  # not straight back into the time-outs
    limit.success()
    assert limit.limit == 4  # a long run of successes: the server may have more room now
    with limit.slot() as r:
        pass
    assert limit.congestion(r) and limit.limit == 2
    for _ in range(2 + REPROBE_AFTER - 1):
        limit.success()
    assert limit.limit == 3
