"""Per-cell statistics of measured trials: medians, bootstrap intervals and speedups.

Pure functions over pandas DataFrames (no I/O). Timings use only trials whose status is
``ok``; a cell's speedup is measured against the sequential cell of the same task,
payload and interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

BASELINE_MODEL = "sequential"
CELL_COLUMNS = ["task", "variant", "model", "workers", "payload_bytes", "interpreter"]
TEXT_COLUMNS = ["task", "variant", "model", "interpreter"]
BASELINE_KEYS = ["task", "variant", "payload_bytes", "interpreter"]
TIMING_COLUMNS = ["wall_s", "startup_s", "shutdown_s", "cpu_user_s", "cpu_sys_s"]
TRIAL_COLUMNS = ["cell_id", *CELL_COLUMNS, "status", *TIMING_COLUMNS, "peak_rss_bytes"]
SUMMARY_COLUMNS = [
    "cell_id",
    *CELL_COLUMNS,
    "n",
    "n_ok",
    "median_wall_s",
    "ci_low_wall_s",
    "ci_high_wall_s",
    "mean_wall_s",
    "std_wall_s",
    "cv_wall",
    "min_wall_s",
    "max_wall_s",
    "iqr_wall_s",
    "median_startup_s",
    "median_shutdown_s",
    "median_cpu_s",
    "cpu_utilisation",
    "median_peak_rss_bytes",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "efficiency",
    "ideal_speedup",
]

# Resampled values held in memory at once per bootstrap batch (bounds memory for big cells).
BATCH_ELEMENTS = 1_000_000

Sample = npt.NDArray[np.float64]
Interval = tuple[float, float]
NO_INTERVAL: Interval = (float("nan"), float("nan"))


@dataclass(frozen=True)
class MedianBootstrap:
    """Bootstrap of one cell's median wall time: percentile interval and resampled medians."""

    low: float
    high: float
    medians: Sample


NO_BOOTSTRAP = MedianBootstrap(float("nan"), float("nan"), np.empty(0))


@overload
def ideal_speedup(workers: int, cores: int) -> int: ...
@overload
def ideal_speedup(workers: pd.Series, cores: int) -> pd.Series: ...
def ideal_speedup(workers: int | pd.Series, cores: int) -> int | pd.Series:
    """Best speedup `workers` can reach on `cores` CPUs: min(workers, cores)."""
    if cores < 1:
        raise ValueError(f"cores must be at least 1, got {cores}")
    if isinstance(workers, pd.Series):
        return workers.clip(upper=cores)
    return min(workers, cores)


def numeric_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with NaN for missing numbers (read back from SQL, they may be None)."""
    numeric = [c for c in SUMMARY_COLUMNS if c in summary.columns and c not in TEXT_COLUMNS]
    return summary.assign(**{column: pd.to_numeric(summary[column]) for column in numeric})


def summarize_cells(
    trials: pd.DataFrame,
    *,
    cores: int,
    seed: int = 20240601,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per cell (sorted by cell_id) with the columns of SUMMARY_COLUMNS.

    Each cell draws from its own random stream, seeded by (seed, cell_id), so a cell's
    intervals do not depend on which other cells are summarised. A frame without a
    ``variant`` column (no swept parameters) is taken as all "".
    """
    if "variant" not in trials.columns:
        trials = trials.assign(variant="")
    _check_columns(trials)
    if trials.empty:
        return pd.DataFrame({column: [] for column in SUMMARY_COLUMNS})
    ok = trials[trials["status"].eq("ok") & trials["wall_s"].notna()]
    summary = _describe_cells(trials, ok)
    medians = _bootstrap_medians(ok, seed, resamples, confidence)
    summary["ci_low_wall_s"] = [_bootstrap_of(medians, cell).low for cell in summary.index]
    summary["ci_high_wall_s"] = [_bootstrap_of(medians, cell).high for cell in summary.index]
    summary = _add_speedups(summary, medians, confidence, cores)
    return summary[SUMMARY_COLUMNS]


def _check_columns(trials: pd.DataFrame) -> None:
    """Fail early, naming the columns a trials frame lacks."""
    missing = [column for column in TRIAL_COLUMNS if column not in trials.columns]
    if missing:
        raise ValueError(f"trials lack the columns {', '.join(missing)}")


def _describe_cells(trials: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    """Counts and point statistics per cell, indexed by cell_id (vectorised groupby)."""
    cells = trials.groupby("cell_id", sort=True)
    summary = cells[CELL_COLUMNS].first()
    summary["n"] = cells.size()
    summary["n_ok"] = ok.groupby("cell_id").size().reindex(summary.index, fill_value=0)
    wall = ok.groupby("cell_id")["wall_s"]
    summary["median_wall_s"] = wall.median()
    summary["mean_wall_s"] = wall.mean()
    summary["std_wall_s"] = wall.std(ddof=1)
    summary["cv_wall"] = summary["std_wall_s"] / summary["mean_wall_s"]
    summary["min_wall_s"] = wall.min()
    summary["max_wall_s"] = wall.max()
    summary["iqr_wall_s"] = wall.agg(stats.iqr)
    per_trial = _per_trial_resources(ok).groupby(ok["cell_id"])
    return summary.join(per_trial.median())


def _per_trial_resources(ok: pd.DataFrame) -> pd.DataFrame:
    """Startup, shutdown, CPU time, CPU utilisation and peak RSS of each ok trial."""
    cpu_s = ok["cpu_user_s"] + ok["cpu_sys_s"]
    # A model without a pool (sequential) may leave startup/shutdown unmeasured: count 0.
    elapsed_s = ok["startup_s"].fillna(0.0) + ok["wall_s"] + ok["shutdown_s"].fillna(0.0)
    return pd.DataFrame(
        {
            "median_startup_s": ok["startup_s"],
            "median_shutdown_s": ok["shutdown_s"],
            "median_cpu_s": cpu_s,
            "cpu_utilisation": cpu_s / elapsed_s,
            "median_peak_rss_bytes": ok["peak_rss_bytes"].astype("float64"),
        }
    )


def _bootstrap_medians(
    ok: pd.DataFrame, seed: int, resamples: int, confidence: float
) -> dict[int, MedianBootstrap]:
    """Bootstrap the median wall time of every cell that has ok trials."""
    bootstraps: dict[int, MedianBootstrap] = {}
    for cell_id, wall in ok.groupby("cell_id")["wall_s"]:
        cell = int(cast(int, cell_id))
        rng = np.random.default_rng([seed, cell])
        bootstraps[cell] = _bootstrap_median(
            wall.to_numpy(dtype="float64"), rng, resamples, confidence
        )
    return bootstraps


def _bootstrap_median(
    sample: Sample, rng: np.random.Generator, resamples: int, confidence: float
) -> MedianBootstrap:
    """Percentile bootstrap of the median (scipy), NaN below two values.

    A constant sample has a constant median: its interval is [value, value], computed
    without scipy (which would otherwise resample a degenerate distribution).
    """
    if sample.size < 2:
        return NO_BOOTSTRAP
    if np.all(sample == sample[0]):
        value = float(sample[0])
        return MedianBootstrap(value, value, np.full(resamples, value))
    result = stats.bootstrap(
        (sample,),
        np.median,
        n_resamples=resamples,
        batch=max(1, min(resamples, BATCH_ELEMENTS // sample.size)),
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=rng,
    )
    interval = result.confidence_interval
    return MedianBootstrap(float(interval.low), float(interval.high), result.bootstrap_distribution)


def _bootstrap_of(medians: dict[int, MedianBootstrap], cell_id: float) -> MedianBootstrap:
    """The bootstrap of a cell; an empty one without ok trials or for a NaN id."""
    if np.isnan(cell_id):
        return NO_BOOTSTRAP
    return medians.get(int(cell_id), NO_BOOTSTRAP)


def _add_speedups(
    summary: pd.DataFrame,
    medians: dict[int, MedianBootstrap],
    confidence: float,
    cores: int,
) -> pd.DataFrame:
    """Add speedup against the sequential baseline, its interval, efficiency and ideal."""
    summary = summary.reset_index().merge(_baselines(summary), on=BASELINE_KEYS, how="left")
    summary["speedup"] = summary["baseline_median_wall_s"] / summary["median_wall_s"]
    intervals = [
        (1.0, 1.0)  # a cell against itself: the ratio is 1 in every resample
        if cell_id == baseline_id and _bootstrap_of(medians, cell_id).medians.size
        else _ratio_interval(
            _bootstrap_of(medians, baseline_id), _bootstrap_of(medians, cell_id), confidence
        )
        for cell_id, baseline_id in zip(
            summary["cell_id"], summary["baseline_cell_id"], strict=True
        )
    ]
    summary["speedup_ci_low"] = [low for low, _ in intervals]
    summary["speedup_ci_high"] = [high for _, high in intervals]
    # A sequential cell uses one worker whatever its workers column says.
    workers = summary["workers"].where(summary["model"].ne(BASELINE_MODEL), 1)
    summary["efficiency"] = summary["speedup"] / workers
    summary["ideal_speedup"] = ideal_speedup(workers, cores)
    return summary.sort_values("cell_id", ignore_index=True)


def _baselines(summary: pd.DataFrame) -> pd.DataFrame:
    """The baseline of each (task, payload, interpreter): its first sequential cell with data."""
    sequential = summary[summary["model"].eq(BASELINE_MODEL)].reset_index()
    sequential = sequential.assign(no_data=sequential["n_ok"].eq(0))
    sequential = sequential.sort_values(["no_data", "cell_id"]).drop_duplicates(BASELINE_KEYS)
    return sequential[[*BASELINE_KEYS, "cell_id", "median_wall_s"]].rename(
        columns={"cell_id": "baseline_cell_id", "median_wall_s": "baseline_median_wall_s"}
    )


def _ratio_interval(
    baseline: MedianBootstrap, cell: MedianBootstrap, confidence: float
) -> Interval:
    """Percentile interval of baseline median / cell median, both resampled independently.

    The same distribution as scipy.stats.bootstrap of the ratio with paired=False, built
    from each cell's own resampled medians so that every sample is resampled only once.
    """
    if not baseline.medians.size or not cell.medians.size or cell.medians.min() <= 0.0:
        return NO_INTERVAL  # too few ok trials, or a zero wall time (no finite speedup)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(baseline.medians / cell.medians, [alpha, 1.0 - alpha])
    return float(low), float(high)


FACT_COLUMNS = ["cell_id", "name", "n", "median", "min", "max"]


def summarize_facts(facts: pd.DataFrame) -> pd.DataFrame:
    """Per cell and fact name (bytes moved, lost updates, pool broken...): how many trials
    recorded it, and its median, min and max over them. ``facts`` has one row per trial and
    fact, with the columns cell_id, name and value (the ``trial_facts`` view)."""
    if facts.empty:
        return pd.DataFrame({column: [] for column in FACT_COLUMNS})
    values = facts.assign(value=pd.to_numeric(facts["value"])).groupby(
        ["cell_id", "name"], sort=True
    )["value"]
    summary = values.agg(["count", "median", "min", "max"]).rename(columns={"count": "n"})
    return summary.reset_index()[FACT_COLUMNS]
