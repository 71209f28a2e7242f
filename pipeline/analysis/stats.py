"""Per-cell statistics of measured trials: medians with order-statistic intervals, and
speedups with their t-intervals.

Pure functions over pandas DataFrames (no I/O). Timings use only trials whose status is
``ok``; a cell's speedup is measured against the sequential cell of the same task,
payload and interpreter: the ratio of the geometric means of their wall times on the
rounds both ran, the ratio its interval is about (inference.ratio_of). Medians are
descriptive numbers beside it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..cells import BASELINE_KEYS as BASELINE_CELL_KEYS
from ..cells import BASELINE_MODEL, CELL_KEYS, TEXT_KEYS, with_optional_keys
from ..metrics import SUMMARY_METRICS
from ..status import TrialStatus
from ..worker.tasks import TASKS
from . import inference
from .scaling import ideal_speedup, karp_flatt

CELL_COLUMNS = list(CELL_KEYS)
TEXT_COLUMNS = [*TEXT_KEYS, "warnings"]
BASELINE_KEYS = list(BASELINE_CELL_KEYS)
TIMING_COLUMNS = ["wall_s", "startup_s", "shutdown_s", "cpu_user_s", "cpu_sys_s"]
TRIAL_COLUMNS = ["cell_id", *CELL_COLUMNS, "status", *TIMING_COLUMNS, "peak_rss_bytes"]
# columns a trials frame may lack (older databases, hand-made frames): taken as missing
OPTIONAL_TRIAL_COLUMNS: dict[str, str | float] = {
    "peak_uss_bytes": np.nan,
    "peak_pss_bytes": np.nan,
    "observer_cpu_s": np.nan,
    "sampler_cpu_s": np.nan,
    "process_s": np.nan,
    "reference_s": np.nan,
}
SUMMARY_COLUMNS = ["cell_id", *CELL_COLUMNS, *SUMMARY_METRICS, "warnings"]

# Instability thresholds, as pyperf checks them: a standard deviation over 10% of the mean,
# or a minimum or maximum more than 50% away from the mean.
UNSTABLE_CV = 0.10
FAR_FROM_MEAN = 0.50
OUTLIER_IQR = 1.5  # Tukey's fences: below Q1 - 1.5 IQR or above Q3 + 1.5 IQR
# The observer (the orchestrator sampling a trial) takes CPU from a cell only where the cell
# needs the cores it uses: a warning when its sampling, at its rate over the worker's life,
# took over 1% as much CPU during the timed phases as the cell did, and the cell's CPU
# use plus the observer's exceeded the usable cores (no spare core to absorb it). An I/O
# cell, or one thread under the GIL on two cores, leaves a core spare: nothing is disturbed.
# (Its fixed costs, starting and reaping the worker, fall outside the timed phases.)
OBSERVER_SHARE = 0.01
SLOW_SPEED = 0.9  # a cell measured while the reference loop ran 10% slower than usual

Sample = npt.NDArray[np.float64]
Interval = tuple[float, float]
NO_INTERVAL: Interval = (float("nan"), float("nan"))


def _iqr(values: pd.Series) -> float:
    """The interquartile range, quartiles by linear interpolation (as scipy.stats.iqr)."""
    q3, q1 = np.quantile(np.asarray(values, dtype="float64"), [0.75, 0.25])
    return float(q3 - q1)


def count_outliers(values: pd.Series | Sample) -> int:
    """How many values lie outside Tukey's fences (Q1 - 1.5 IQR, Q3 + 1.5 IQR), with
    quartiles by linear interpolation (numpy's default). Outliers are counted, never
    dropped."""
    sample = np.asarray(values, dtype="float64")
    sample = sample[~np.isnan(sample)]
    if sample.size < 4:
        return 0
    q1, q3 = np.quantile(sample, [0.25, 0.75])
    spread = OUTLIER_IQR * (q3 - q1)
    return int(np.sum((sample < q1 - spread) | (sample > q3 + spread)))


def instability(cell: Mapping[Hashable, Any], target_ci: float | None = None) -> str:
    """pyperf's warnings for one cell's wall times, joined by '; ' ('' when stable); with
    ``target_ci``, also when the median is known less precisely than asked."""
    mean, cv = cell["mean_wall_s"], cell["cv_wall"]
    if not cell["n_ok"] or np.isnan(mean) or mean <= 0:
        return ""
    warnings = []
    median = cell.get("median_wall_s", float("nan"))
    low, high = cell.get("ci_low_wall_s", float("nan")), cell.get("ci_high_wall_s", float("nan"))
    if target_ci is not None and median > 0 and not np.isnan(low) and not np.isnan(high):
        width = (high - low) / 2 / median
        if width > target_ci:
            warnings.append(
                f"too few trials for the precision asked: the median is known to ±{width:.1%}, "
                f"not ±{target_ci:.1%}"
            )
    if not np.isnan(cv) and cv > UNSTABLE_CV:
        warnings.append(f"standard deviation is {cv:.0%} of the mean (over {UNSTABLE_CV:.0%})")
    below = (mean - cell["min_wall_s"]) / mean
    above = (cell["max_wall_s"] - mean) / mean
    if below > FAR_FROM_MEAN:
        warnings.append(f"the fastest trial is {below:.0%} below the mean")
    if above > FAR_FROM_MEAN:
        warnings.append(f"the slowest trial is {above:.0%} above the mean")
    if cell.get("outliers"):
        warnings.append(f"{int(cell['outliers'])} outlier(s) by the 1.5 IQR rule (kept)")
    return "; ".join(warnings)


def numeric_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with NaN for missing numbers (read back from SQL, they may be None)
    and "" for missing optional keys (variant, host)."""
    numeric = [c for c in SUMMARY_COLUMNS if c in summary.columns and c not in TEXT_COLUMNS]
    summary = with_optional_keys(summary)
    return summary.assign(**{column: pd.to_numeric(summary[column]) for column in numeric})


def summarise_cells(
    trials: pd.DataFrame,
    *,
    cores: float,
    confidence: float = 0.95,
    target_ci: float | None = None,
    rule: inference.Rule | None = None,
) -> pd.DataFrame:
    """One row per cell (sorted by cell_id) with the columns of SUMMARY_COLUMNS.

    With ``target_ci`` (adaptive repetitions), a cell whose interval's relative half-width
    is wider than the target gets a warning saying so.

    Every interval is computed, not resampled (order statistics for a median; a t-interval
    of the log ratio for a speedup, paired by round with ``rule.paired``, and in an
    adaptive run a repeated interval that covers at ``confidence`` over all the run's
    looks: ``rule``): no random draws, so a cell's numbers depend only on its own trials
    and its baseline's. A frame
    without a ``variant`` or ``host`` column is taken as all "" (cells.OPTIONAL_KEYS).
    """
    trials = with_optional_keys(trials).assign(
        **{name: value for name, value in OPTIONAL_TRIAL_COLUMNS.items() if name not in trials}
    )
    _check_columns(trials)
    if trials.empty:
        return pd.DataFrame({column: [] for column in SUMMARY_COLUMNS})
    ok = trials[trials["status"].eq(TrialStatus.OK) & trials["wall_s"].notna()]
    summary = _describe_cells(trials, ok)
    walls = _walls_by_cell(ok)
    intervals = {
        cell: inference.median_interval(wall.values, confidence) for cell, wall in walls.items()
    }
    no_interval = inference.MedianInterval(np.nan, np.nan, np.nan)
    summary["ci_low_wall_s"] = [intervals.get(cell, no_interval).low for cell in summary.index]
    summary["ci_high_wall_s"] = [intervals.get(cell, no_interval).high for cell in summary.index]
    summary["ci_level_wall"] = [intervals.get(cell, no_interval).level for cell in summary.index]
    summary = _add_drift(summary, ok)
    ratio_rule = (rule or inference.Rule()).with_alpha((1.0 - confidence) / 2.0)
    summary = _add_speedups(summary, walls, ratio_rule, cores)
    summary["karp_flatt"] = karp_flatt(summary["speedup"], summary["workers"], cores)
    summary["warnings"] = [
        "; ".join(filter(None, [instability(row, target_ci), *measurement_warnings(row, cores)]))
        for row in summary.to_dict("records")
    ]
    return summary[SUMMARY_COLUMNS]


def _add_drift(summary: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    """The machine's speed while each cell ran, from the reference loop timed before each
    trial: its median over the host's trials of the run over its median over the cell's
    (1: usual; 0.8: 20% slower), and the median of wall times each scaled to the usual
    speed (wall × usual reference / the trial's reference)."""
    reference = ok["reference_s"].where(ok["reference_s"] > 0)
    usual = reference.groupby(ok["host"]).transform("median")
    by_cell = ok["cell_id"]
    cell_reference = reference.groupby(by_cell).median()
    run_reference = usual.groupby(by_cell).first()
    adjusted = (ok["wall_s"] * usual / reference).groupby(by_cell).median()
    return summary.assign(
        relative_speed=(run_reference / cell_reference).reindex(summary.index),
        median_wall_s_adjusted=adjusted.reindex(summary.index),
    )


def measurement_warnings(cell: Mapping[Hashable, Any], cores: float = math.inf) -> list[str]:
    """What the run can see about how a cell was measured: an observer that took CPU the
    cell needed (``cores``: the usable cores), a machine that ran slow, or a speedup no
    machine of these cores can give."""
    warnings = []
    share, busy = cell.get("observer_share", np.nan), cell.get("cpu_utilisation", np.nan)
    if share > OBSERVER_SHARE and busy * (1 + share) > cores:
        warnings.append(
            f"the observer's sampling used {share:.1%} as much CPU as the cell (over "
            f"{OBSERVER_SHARE:.0%}) while the cell kept {busy:.2g} of {cores:g} cores busy; "
            "sampling: {memory: rss} or a longer interval costs less"
        )
    speed = cell.get("relative_speed", np.nan)
    if speed < SLOW_SPEED:
        warnings.append(
            f"measured while the machine ran {1 - speed:.0%} slower than over the run "
            "(reference loop); median_wall_s_adjusted corrects for it"
        )
    implausible = implausibility(cell)
    if implausible:
        warnings.append(implausible)
    return warnings


def implausibility(cell: Mapping[Hashable, Any]) -> str:
    """Why a cell's speedup is physically implausible, with the likely cause the run can
    see, or '': a CPU-bound speedup whose interval lies above what its workers can get from
    the usable cores, or any speedup whose interval lies above its worker count. Not for
    one worker (sequential, or a pool of one): with no parallelism there is no physical
    bound to pass, and a pool thread may truly run Python code faster than a process's
    main thread (docs/statistics.md: threads faster than sequential without parallelism)."""
    low, high = cell.get("speedup_ci_low", np.nan), cell.get("speedup_ci_high", np.nan)
    ideal, workers = cell.get("ideal_speedup", np.nan), cell.get("workers", np.nan)
    bound = ideal if not np.isnan(ideal) else workers
    if np.isnan(low) or np.isnan(bound) or low <= bound or workers == 1:
        return ""
    what = "its usable cores" if not np.isnan(ideal) else "its workers"
    base_speed = cell.get("baseline_relative_speed", np.nan)
    speed = cell.get("relative_speed", np.nan)
    if base_speed < speed * SLOW_SPEED:
        cause = (
            f"the baseline was measured while the machine ran {1 - base_speed / speed:.0%} slower"
        )
    elif cell.get("baseline_cv_wall", 0.0) > UNSTABLE_CV:
        cause = f"a noisy baseline (CV {cell['baseline_cv_wall']:.0%})"
    else:
        more = "does more per item than the workers do, or the task is not what its name says"
        cause = (
            "a pool thread runs the code faster than the sequential baseline's main thread "
            f"(docs/statistics.md: threads faster than sequential without parallelism), or that "
            f"baseline {more}"
            if cell.get("model") == "threads"
            else f"the sequential baseline {more}"
        )
    return (
        f"physically implausible: speedup [{low:.2f}, {high:.2f}] lies above the {bound:g}× "
        f"that {what} allow (likely cause: {cause})"
    )


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
    summary["iqr_wall_s"] = wall.agg(_iqr)
    summary["outliers"] = wall.agg(count_outliers).reindex(summary.index, fill_value=0)
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
            "median_peak_uss_bytes": ok["peak_uss_bytes"].astype("float64"),
            "median_peak_pss_bytes": ok["peak_pss_bytes"].astype("float64"),
            "median_observer_cpu_s": ok["observer_cpu_s"].astype("float64"),
            # the sampler, at its rate over the worker's life, during the timed phases
            "observer_share": ok["sampler_cpu_s"].astype("float64")
            / ok["process_s"].astype("float64")
            * elapsed_s
            / cpu_s,
        }
    )


def _walls_by_cell(ok: pd.DataFrame) -> dict[int, inference.Observed]:
    """Each cell's ok wall times, with their rounds where every trial has one."""
    known = "repetition" in ok and bool(ok["repetition"].notna().all())
    return {
        int(cast(int, cell_id)): inference.Observed(
            group["wall_s"].to_numpy(dtype="float64"),
            group["repetition"].to_numpy(dtype="int64") if known else None,
        )
        for cell_id, group in ok.groupby("cell_id")
    }


def _speedup(
    walls: dict[int, inference.Observed], cell_id: float, baseline_id: float, rule: inference.Rule
) -> inference.Ratio:
    """Baseline time / cell time (geometric means on the rounds both ran) with its
    t-interval of the log ratio (Welch's, or paired by round) at the rule's level."""
    if np.isnan(cell_id) or np.isnan(baseline_id):
        return inference.NO_RATIO
    cell, base = walls.get(int(cell_id)), walls.get(int(baseline_id))
    if cell is None or base is None:
        return inference.NO_RATIO
    level = rule.level()
    if cell_id == baseline_id:  # a cell against itself
        return inference.Ratio(1.0, 1.0, 1.0, level, cell.values.size, cell.values.size, False)
    return inference.ratio_of(base, cell, level=level, paired=rule.paired)


def _add_speedups(
    summary: pd.DataFrame,
    walls: dict[int, inference.Observed],
    rule: inference.Rule,
    cores: float,
) -> pd.DataFrame:
    """Add speedup against the sequential baseline, its interval, efficiency and ideal."""
    summary = summary.reset_index().merge(_baselines(summary), on=BASELINE_KEYS, how="left")
    found = [
        _speedup(walls, cell_id, baseline_id, rule)
        for cell_id, baseline_id in zip(
            summary["cell_id"], summary["baseline_cell_id"], strict=True
        )
    ]
    summary["speedup"] = [r.ratio for r in found]
    summary["speedup_ci_low"] = [r.low for r in found]
    summary["speedup_ci_high"] = [r.high for r in found]
    summary["speedup_ci_level"] = [r.level if r.known else np.nan for r in found]
    # A sequential cell uses one worker whatever its workers column says.
    workers = summary["workers"].where(summary["model"].ne(BASELINE_MODEL), 1)
    summary["efficiency"] = summary["speedup"] / workers
    # the ideal applies to CPU-bound work only: waits overlap whatever the cores
    cpu_bound = summary["task"].map(lambda task: getattr(TASKS.get(task), "cpu_bound", False))
    summary["ideal_speedup"] = ideal_speedup(workers, cores).where(cpu_bound.astype(bool))
    return summary.sort_values("cell_id", ignore_index=True)


def _baselines(summary: pd.DataFrame) -> pd.DataFrame:
    """The baseline of each (task, payload, interpreter): its first sequential cell with data."""
    sequential = summary[summary["model"].eq(BASELINE_MODEL)].reset_index()
    sequential = sequential.assign(no_data=sequential["n_ok"].eq(0))
    sequential = sequential.sort_values(["no_data", "cell_id"]).drop_duplicates(BASELINE_KEYS)
    columns = [*BASELINE_KEYS, "cell_id", "median_wall_s", "relative_speed", "cv_wall"]
    return sequential[columns].rename(
        columns={
            "cell_id": "baseline_cell_id",
            "median_wall_s": "baseline_median_wall_s",
            "relative_speed": "baseline_relative_speed",
            "cv_wall": "baseline_cv_wall",
        }
    )


FACT_COLUMNS = ["cell_id", "name", "n", "median", "min", "max"]


def summarise_facts(facts: pd.DataFrame) -> pd.DataFrame:
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


def relative_half_width(sample: npt.ArrayLike, confidence: float = 0.95) -> float:
    """Half the width of the median's interval over the median: 0.02 means the median is
    known to ±2% at ``confidence``. NaN below two values or for a zero median; infinite
    while there are too few values for an interval at that level (order statistics: six
    at 95%), so that a couple of agreeing trials never count as precise."""
    values = np.sort(np.asarray(sample, dtype="float64"))
    values = values[~np.isnan(values)]
    n = values.size
    median = float(values[(n - 1) // 2] + values[n // 2]) / 2 if n else 0.0
    if n < 2 or median <= 0:
        return float("nan")
    interval = inference.median_interval(values, confidence)
    if interval.level < confidence:
        return float("inf")
    return (interval.high - interval.low) / 2 / median
