"""How many threads the embedded llama.cpp server gets: the cores that other work leaves free when it starts.

llama.cpp splits each step of the model across its threads and waits for all of them, so a thread that
shares its core with another busy process stalls the others at every step. Measured on a 2-core machine
with one other CPU-bound process (bench/local_threads.py, SmolLM2-135M, two requests at once): 2 threads
took 50.7 s a round and decoded 6.9 tokens/s, 1 thread 31.8 s and 13.8 tokens/s; on the idle machine
2 threads took 21.0 s and 1 thread 32.1 s. So: every core when the machine is idle, one fewer for each
core another process keeps busy. `LLMXMR_LOCAL_THREADS` overrides the choice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "LLMXMR_LOCAL_THREADS"
STAT = Path("/proc/stat")


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores since boot, from /proc/stat's first line; None where there is none."""
    try:
        fields = STAT.read_text(encoding="ascii").splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    values = [int(v) for v in fields[1:9] if v.isdigit()]  # user nice system idle iowait irq softirq steal
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return idle, sum(values)


def free_cores(cores: int, sample: float = 0.5) -> float | None:
    """Cores left idle by every process over `sample` seconds; None where the machine cannot say."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(sample)
    after = _cpu_times()
    if after is None or after[1] <= before[1]:
        return None
    return cores * (after[0] - before[0]) / (after[1] - before[1])


def threads_for(cores: int, free: float | None) -> int:
    """Every core when they are free; one fewer for each core that other work keeps busy; at least one."""
    if free is None:
        return cores
    return max(1, min(cores, int(free + 0.5)))


def embedded_threads() -> tuple[int, str]:
    """The thread count for the embedded server, and why (for the log)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    forced = os.environ.get(ENV, "").strip()
    if forced:
        if not forced.isdigit() or int(forced) < 1:
            from llmxmr.models.errors import ModelSetupError

            raise ModelSetupError(f"{ENV}={forced!r} is not a number of threads. Fix: a whole number from 1 "
                                  f"to {cores}, or unset it to choose by the free cores")
        return int(forced), f"{ENV}={forced}"
    free = free_cores(cores)
    threads = threads_for(cores, free)
    why = (f"{free:.1f} of {cores} cores free when it started" if free is not None
           else f"{cores} cores (their use could not be read)")
    return threads, why
