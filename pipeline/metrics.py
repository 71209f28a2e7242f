"""Every number the pipeline measures or derives, written once: its column, a label for
people, its unit, and whether lower or higher is better. Terminal tables, report tables,
the Markdown digest, chart axes and the ``cell_summary`` view all read it; CSV and JSON
exports stay raw.

Formatting rules, the same everywhere a person reads a number: times with a unit and three
significant digits (1.23 s, 45.6 ms, 789 µs), bytes in KiB/MiB/GiB, ratios as 1.23×,
shares as percentages, changes as percentages with their sign, p-values with three
significant digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from .units import MISSING, format_bytes, format_size


class Unit(StrEnum):
    """How a metric's values are read, and so printed."""

    SECONDS = "s"
    BYTES = "bytes"
    RATIO = "×"  # 1.23×: a speedup, a quotient of two geometric means or medians
    SHARE = "%"  # a fraction of a whole, printed as a percentage (0.123 -> 12.3%)
    CHANGE = "±%"  # a relative change, printed with its sign (0.05 -> +5.0%)
    CORES = "cores"  # CPU time over wall time: 2.00 means two cores busy throughout
    SIZE = "size"  # exact bytes in the largest unit dividing them: payloads (64 KiB)
    COUNT = "count"
    PER_SECOND = "/s"
    NUMBER = ""  # a plain number, three significant digits


def is_missing(value: Any) -> bool:
    """True for None and NaN: a number that was not measured."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_seconds(seconds: float | None) -> str:
    """A duration with three significant digits in s, ms or µs (a dash when missing)."""
    if seconds is None or math.isnan(seconds):
        return MISSING
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-6:.3g} µs"


def _count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


FORMATTERS: dict[Unit, Callable[[float], str]] = {
    Unit.SECONDS: format_seconds,
    Unit.BYTES: format_size,
    Unit.SIZE: lambda value: format_bytes(int(value)),
    Unit.RATIO: lambda value: f"{value:.2f}×",
    Unit.SHARE: lambda value: f"{value:.1%}",
    Unit.CHANGE: lambda value: f"{value:+.1%}",
    Unit.CORES: lambda value: f"{value:.2f}",
    Unit.COUNT: _count,
    Unit.PER_SECOND: lambda value: f"{value:.3g}/s",
    Unit.NUMBER: lambda value: f"{value:.3g}",
}


def format_value(value: Any, unit: Unit) -> str:
    """``value`` in ``unit`` for people; a dash when it is missing."""
    if is_missing(value):
        return MISSING
    try:
        return FORMATTERS[unit](float(value))
    except (TypeError, ValueError):
        return str(value)


def format_interval(low: Any, high: Any, unit: Unit) -> str:
    """'[low, high]' in ``unit`` ('[1.90, 2.01]' for ratios: the value beside it carries
    the ×), or '' when either end is missing."""
    if is_missing(low) or is_missing(high):
        return ""
    if unit is Unit.RATIO:
        return f"[{float(low):.2f}, {float(high):.2f}]"
    return f"[{format_value(low, unit)}, {format_value(high, unit)}]"


def format_with_interval(value: Any, low: Any, high: Any, unit: Unit) -> str:
    """'1.95× [1.90, 2.01]': a value with its interval (just the value without one)."""
    interval = format_interval(low, high, unit)
    return format_value(value, unit) + (f" {interval}" if interval else "")


@dataclass(frozen=True)
class Metric:
    """One measured or derived number: its column name, label, unit and direction."""

    column: str
    label: str
    unit: Unit
    better: Literal["lower", "higher"] | None = None

    def format(self, value: Any) -> str:
        """A value of this metric for people."""
        return format_value(value, self.unit)

    @property
    def axis_label(self) -> str:
        """The label with its unit, for a chart axis: 'median wall time (s)'."""
        shown = {Unit.SECONDS: "s", Unit.CORES: "cores busy", Unit.RATIO: "×"}.get(self.unit)
        return f"{self.label} ({shown})" if shown else self.label


def _metrics(*metrics: Metric) -> dict[str, Metric]:
    return {metric.column: metric for metric in metrics}


S, B, X = Unit.SECONDS, Unit.BYTES, Unit.RATIO
# One measured trial (the ``trial_results`` view).
TRIAL_METRICS = _metrics(
    Metric("wall_s", "wall time", S, "lower"),
    Metric("startup_s", "start-up time", S, "lower"),
    Metric("shutdown_s", "shutdown time", S, "lower"),
    Metric("process_s", "worker process lifetime", S, "lower"),
    Metric("cpu_user_s", "user CPU time", S, "lower"),
    Metric("cpu_sys_s", "system CPU time", S, "lower"),
    Metric("peak_rss_bytes", "peak RSS", B, "lower"),
    Metric("peak_uss_bytes", "peak USS", B, "lower"),
    Metric("peak_pss_bytes", "peak PSS", B, "lower"),
    Metric("items_done", "items done", Unit.COUNT, "higher"),
    Metric("items_failed", "items failed", Unit.COUNT, "lower"),
    Metric("latency_p50_s", "item latency p50", S, "lower"),
    Metric("latency_p95_s", "item latency p95", S, "lower"),
    Metric("latency_p99_s", "item latency p99", S, "lower"),
    Metric("throughput_items_s", "throughput", Unit.PER_SECOND, "higher"),
    Metric("cpu_utilisation", "CPU utilisation", Unit.CORES),
    Metric("ctx_switches_voluntary", "voluntary context switches", Unit.COUNT),
    Metric("ctx_switches_involuntary", "involuntary context switches", Unit.COUNT, "lower"),
    Metric("switch_interval_s", "switch interval", S),
)
# One cell's statistics (``cell_stats``, behind the ``cell_summary`` view), in view order.
SUMMARY_METRICS = _metrics(
    Metric("n", "trials", Unit.COUNT),
    Metric("n_ok", "ok trials", Unit.COUNT, "higher"),
    Metric("median_wall_s", "median wall time", S, "lower"),
    Metric("ci_low_wall_s", "wall time interval, low", S),
    Metric("ci_high_wall_s", "wall time interval, high", S),
    Metric("ci_level_wall", "level of the wall time interval", Unit.SHARE),
    Metric("mean_wall_s", "mean wall time", S, "lower"),
    Metric("std_wall_s", "standard deviation of wall time", S, "lower"),
    Metric("cv_wall", "coefficient of variation", Unit.SHARE, "lower"),
    Metric("min_wall_s", "fastest wall time", S, "lower"),
    Metric("max_wall_s", "slowest wall time", S, "lower"),
    Metric("iqr_wall_s", "interquartile range of wall time", S, "lower"),
    Metric("outliers", "outliers", Unit.COUNT, "lower"),
    Metric("median_startup_s", "median start-up time", S, "lower"),
    Metric("median_shutdown_s", "median shutdown time", S, "lower"),
    Metric("median_cpu_s", "median CPU time", S, "lower"),
    Metric("cpu_utilisation", "CPU utilisation", Unit.CORES),
    Metric("median_peak_rss_bytes", "median peak RSS", B, "lower"),
    Metric("median_peak_uss_bytes", "median peak USS", B, "lower"),
    Metric("median_peak_pss_bytes", "median peak PSS", B, "lower"),
    Metric("speedup", "speedup vs sequential (geometric means)", X, "higher"),
    Metric("speedup_ci_low", "speedup interval, low", X),
    Metric("speedup_ci_high", "speedup interval, high", X),
    Metric("speedup_ci_level", "level of each look's speedup interval", Unit.SHARE),
    Metric("efficiency", "efficiency (speedup / workers)", Unit.SHARE, "higher"),
    Metric("ideal_speedup", "ideal speedup", X),
    Metric("karp_flatt", "Karp-Flatt serial fraction", Unit.SHARE, "lower"),
    Metric("median_observer_cpu_s", "median observer CPU time", S, "lower"),
    Metric("observer_share", "sampling CPU per CPU of the cell", Unit.SHARE, "lower"),
    Metric("relative_speed", "machine speed during the cell (1: the run's median)", X),
    Metric("median_wall_s_adjusted", "median wall time adjusted for drift", S, "lower"),
)
# Two runs compared cell by cell (``pipeline compare``).
COMPARE_METRICS = _metrics(
    Metric("n_first", "trials of A", Unit.COUNT),
    Metric("n_second", "trials of B", Unit.COUNT),
    Metric("median_first_s", "median of A (descriptive)", S, "lower"),
    Metric("median_second_s", "median of B (descriptive)", S, "lower"),
    Metric("change", "change B vs A (geometric means of trial times)", Unit.CHANGE, "lower"),
    Metric("change_ci_low", "change interval, low", Unit.CHANGE),
    Metric("change_ci_high", "change interval, high", Unit.CHANGE),
    Metric("level", "level of the change's interval", Unit.SHARE),
    Metric("threshold", "slower by more than this is a regression", Unit.SHARE),
)
# Anything else a person reads: run listings, task facts.
OTHER_METRICS = _metrics(
    Metric("duration_s", "duration", S),
    Metric("payload_bytes", "payload per item", Unit.SIZE),
    Metric("r_squared", "R²", Unit.NUMBER, "higher"),
)
METRICS: dict[str, Metric] = {
    **TRIAL_METRICS,
    **SUMMARY_METRICS,
    **COMPARE_METRICS,
    **OTHER_METRICS,
}


def format_column(column: str, values: Iterable[Any]) -> list[str]:
    """A column's values for people: formatted by its metric when it is one, else as text
    (missing values as a dash)."""
    metric = METRICS.get(column)
    if metric is None:
        return [MISSING if is_missing(value) else str(value) for value in values]
    return [metric.format(value) for value in values]
