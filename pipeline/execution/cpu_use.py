"""Other programs' CPU use around a run: machine-wide CPU use over a window, less what the
orchestrating process itself used in it, so that the run's own set-up and summary can go on
while the machine is sampled (``environment.capture`` and ``closing_figures``)."""

from __future__ import annotations

import time
from typing import Any

import psutil

CPU_PERCENT_INTERVAL_S = 0.2  # the shortest window over which CPU use is sampled


def own_cpu_s() -> float:
    """This process's CPU time, every thread (children not included)."""
    return time.process_time()


class CpuWindow:
    """Machine-wide CPU use by other programs, in percent, over a window of at least
    ``minimum_s`` from its opening: what this process itself used in the window is left
    out, so the run's own work (its set-up before the first trial, its summary after the
    last) goes on while the machine is sampled instead of the run waiting for the sample.
    The busy time is psutil's (``cpu_percent``): all but idle and I/O wait, guests counted
    once. The run's trial processes are not running while a window is open."""

    def __init__(self, minimum_s: float = CPU_PERCENT_INTERVAL_S) -> None:
        self.minimum_s = minimum_s
        self.opened_s = time.monotonic()
        self.own_s = own_cpu_s()
        self.times = cpu_times()

    def close(self) -> float | None:
        """Wait out what is left of the window; the other programs' CPU use in it."""
        left_s = self.minimum_s - (time.monotonic() - self.opened_s)
        if left_s > 0:
            time.sleep(left_s)
        own_s = own_cpu_s() - self.own_s
        now = cpu_times()
        if self.times is None or now is None:
            return None
        total_s = _total_s(now) - _total_s(self.times)
        busy_s = total_s - (_idle_s(now) - _idle_s(self.times)) - own_s
        if total_s <= 0:
            return None
        return round(min(max(busy_s / total_s * 100.0, 0.0), 100.0), 1)


def cpu_times() -> Any:
    """The machine's CPU times (psutil), or None where they cannot be read."""
    try:
        return psutil.cpu_times()
    except (OSError, RuntimeError):
        return None


def _total_s(times: Any) -> float:
    """All CPU time (guest time is already counted in user and nice, as psutil has it)."""
    return float(sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0))


def _idle_s(times: Any) -> float:
    return float(times.idle + getattr(times, "iowait", 0.0))
