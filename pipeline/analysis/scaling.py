"""How speedup grows with workers: the ideal for the usable cores, the Karp-Flatt serial
fraction, and fits of Amdahl's law and the Universal Scalability Law with intervals.

Pure functions over pandas DataFrames and numpy arrays (no I/O).
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special  # scipy.stats (a second to import) is not needed here

from ..cells import BASELINE_MODEL, SERIES_KEYS, with_optional_keys

Sample = npt.NDArray[np.float64]


@overload
def ideal_speedup(workers: int, cores: float) -> float: ...
@overload
def ideal_speedup(workers: pd.Series, cores: float) -> pd.Series: ...
def ideal_speedup(workers: int | pd.Series, cores: float) -> float | pd.Series:
    """Best speedup CPU-bound work on `workers` workers can reach with `cores` usable
    CPUs (affinity capped by the cgroup quota): min(workers, cores)."""
    if cores < 1:
        raise ValueError(f"cores must be at least 1, got {cores}")
    if isinstance(workers, pd.Series):
        return workers.clip(upper=cores)
    return min(workers, cores)


def karp_flatt(speedup: pd.Series, workers: pd.Series, cores: float = math.inf) -> pd.Series:
    """The experimentally determined serial fraction e = (1/S - 1/p) / (1 - 1/p) of each
    cell, with p = min(workers, cores) the processors that can work at once (NaN for
    p <= 1). Rising e with p means overhead grows with the workers; a steady e is an
    inherent serial part."""
    p = workers.astype("float64").clip(upper=cores)
    p = p.where(p > 1)
    return (1.0 / speedup - 1.0 / p) / (1.0 - 1.0 / p)


# -- scaling models ---------------------------------------------------------------------------
SCALING_KEYS = list(SERIES_KEYS)
SCALING_COLUMNS = [
    *SCALING_KEYS,
    "points",
    "parallel_fraction",
    "parallel_fraction_ci_low",
    "parallel_fraction_ci_high",
    "r_squared",
    "usl_sigma",
    "usl_sigma_ci_low",
    "usl_sigma_ci_high",
    "usl_kappa",
    "usl_kappa_ci_low",
    "usl_kappa_ci_high",
    "usl_peak_workers",
    "note",
]
POOR_FIT_R2 = 0.9  # below this, Amdahl's law does not describe the cells


def amdahl(workers: npt.ArrayLike, parallel_fraction: float) -> Sample:
    """Amdahl's law: the speedup of ``workers`` workers when ``parallel_fraction`` of the
    work runs in parallel, 1 / ((1 - p) + p / n)."""
    n = np.asarray(workers, dtype="float64")
    speedup: Sample = 1.0 / ((1.0 - parallel_fraction) + parallel_fraction / n)
    return speedup


def usl(workers: npt.ArrayLike, sigma: float, kappa: float) -> Sample:
    """Gunther's Universal Scalability Law: n / (1 + σ(n − 1) + κ n(n − 1)), with σ the
    contention (serialised share) and κ the coherency cost (pairwise crosstalk)."""
    n = np.asarray(workers, dtype="float64")
    speedup: Sample = n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
    return speedup


def scaling_fits(summary: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Fits of speedup over workers for each (task, variant, model, payload, interpreter)
    with a sequential baseline, on the measured cells only (no synthetic point at one
    worker: a pool of one is not the sequential baseline):

    * Amdahl's law (two or more worker counts): the parallel fraction with its interval
      (from the fit's covariance, t-distributed) and R², with a note when it is poor;
    * the Universal Scalability Law (three or more worker counts): contention σ and
      coherency κ with intervals, and the worker count where it predicts the peak,
      sqrt((1 − σ)/κ) (none while κ is 0: no retrograde scaling seen).
    """
    rows = []
    summary = with_optional_keys(summary)
    cells = summary[summary["model"].ne(BASELINE_MODEL) & summary["speedup"].notna()]
    for key, group in cells.groupby(SCALING_KEYS, sort=False, dropna=False):
        n = group["workers"].to_numpy(dtype="float64")
        speedup = group["speedup"].to_numpy(dtype="float64")
        row: dict[str, Any] = dict(zip(SCALING_KEYS, key, strict=True))
        row["points"] = int(n.size)
        if np.unique(n).size < 2:
            rows.append({**row, "note": "too few points: needs 2 worker counts"})
            continue
        try:
            row.update(_amdahl_fit(n, speedup, confidence))
            if np.unique(n).size >= 3:
                row.update(_usl_fit(n, speedup, confidence))
        except (RuntimeError, ValueError) as error:  # curve_fit found no optimum
            row["note"] = f"fit did not converge: {error}"
        rows.append(row)
    return pd.DataFrame(rows, columns=SCALING_COLUMNS)


def _t_spread(
    covariance: Sample, index: int, points: int, parameters: int, confidence: float
) -> float:
    df = max(points - parameters, 1)
    return float(
        special.stdtrit(df, 0.5 + confidence / 2) * np.sqrt(max(covariance[index, index], 0.0))
    )


def _amdahl_fit(n: Sample, speedup: Sample, confidence: float) -> dict[str, Any]:
    from scipy.optimize import curve_fit

    (fraction,), covariance = curve_fit(amdahl, n, speedup, p0=[0.5], bounds=(0.0, 1.0))
    spread = _t_spread(covariance, 0, n.size, 1, confidence)
    residual = float(np.sum((speedup - amdahl(n, fraction)) ** 2))
    total = float(np.sum((speedup - speedup.mean()) ** 2))
    r_squared = 1.0 - residual / total if total > 0 else float("nan")
    poor = not r_squared >= POOR_FIT_R2
    return {
        "parallel_fraction": float(fraction),
        "parallel_fraction_ci_low": max(0.0, float(fraction) - spread),
        "parallel_fraction_ci_high": min(1.0, float(fraction) + spread),
        "r_squared": r_squared,
        "note": f"poor Amdahl fit (R² {r_squared:.2f} < {POOR_FIT_R2})" if poor else "",
    }


def _usl_fit(n: Sample, speedup: Sample, confidence: float) -> dict[str, Any]:
    from scipy.optimize import curve_fit

    (sigma, kappa), covariance = curve_fit(
        usl, n, speedup, p0=[0.1, 0.01], bounds=([0.0, 0.0], [1.0, 1.0])
    )
    sigma_spread = _t_spread(covariance, 0, n.size, 2, confidence)
    kappa_spread = _t_spread(covariance, 1, n.size, 2, confidence)
    peak = math.sqrt((1.0 - sigma) / kappa) if kappa > 0 else float("nan")
    return {
        "usl_sigma": float(sigma),
        "usl_sigma_ci_low": max(0.0, float(sigma) - sigma_spread),
        "usl_sigma_ci_high": float(sigma) + sigma_spread,
        "usl_kappa": float(kappa),
        "usl_kappa_ci_low": max(0.0, float(kappa) - kappa_spread),
        "usl_kappa_ci_high": float(kappa) + kappa_spread,
        "usl_peak_workers": peak,
    }
