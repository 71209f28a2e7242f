"""Stopping that keeps its error rates: the level each look's interval is held to.

An adaptive run looks at its comparisons after every round and gives a cell no more
trials once the comparisons it is in are decided. Deciding at the first of many looks
where an interval happens to clear the margin is optional stopping: at a fixed level of
5% a side, a true ratio exactly at the margin would be called a gain in 15-21% of runs
(5 to 25 or 40 trials a cell), not 5%.

The intervals are therefore **repeated confidence intervals** (Jennison & Turnbull 1989):
every look uses one constant nominal level α' (Pocock's boundary, 1977), chosen so that
the chance that *any* look's interval misses the truth on a given side is α. Whatever
rule then stops a cell (decided, budget, time limit, a frozen partner), a statement made
at the look where it stopped keeps its error rate α. α' depends on the schedule (the
trials a cell has at the first and the last look, one trial a round) and on the
interval (Welch's or paired); it is found by seeded simulation of that interval's t
statistic at every look of the schedule under normal noise on the log scale (where the
statistic is pivotal), as the α-quantile of the smallest one-sided p-value over the looks.
docs/statistics.md says why this boundary and not O'Brien-Fleming's or a confidence
sequence, and gives the procedure's error rates as run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import special

SIMULATIONS = 50_000  # statistics' paths per schedule (α' to about ±2% of itself at α=5%)
# α' is at most α (the first look alone is held at α), so only smallest p-values at or
# below α matter: one-sided p-values above TAIL are not worked out (they read 1)
TAIL = 0.10
_CHUNK = 10_000


@dataclass(frozen=True)
class Schedule:
    """When a run's comparisons are looked at: with ``first`` trials a cell, then after
    every round (one more trial a cell) up to ``last``. first == last: one look."""

    first: int
    last: int

    @property
    def looks(self) -> int:
        return max(self.last - self.first, 0) + 1

    @property
    def sequential(self) -> bool:
        return self.looks > 1


FIXED = Schedule(0, 0)  # one look: a fixed number of trials


def schedule_of(minimum: int, maximum: int | None) -> Schedule:
    """A run's schedule from its repetitions (``maximum`` None: not adaptive)."""
    return Schedule(minimum, minimum if maximum is None else max(maximum, minimum))


@functools.lru_cache(maxsize=1024)
def look_alpha(alpha: float, schedule: Schedule, *, paired: bool = False) -> float:
    """The one-sided level of each look's interval that keeps the chance of a false
    statement on one side at ``alpha`` over every look of ``schedule`` (α itself for a
    single look)."""
    if not schedule.sequential or alpha <= 0:
        return alpha
    first = max(schedule.first, 2)

    def quantile(cutoff: float) -> float:
        smallest = _smallest_p_values(first, schedule.last, paired, cutoff)
        return float(np.quantile(smallest, alpha, method="inverted_cdf"))

    found = quantile(TAIL if alpha <= TAIL else 1.0)
    # beyond the tail after all (not so for any schedule tried): every p-value then
    return found if found <= TAIL else quantile(1.0)


@functools.lru_cache(maxsize=16)
def _smallest_p_values(
    first: int, last: int, paired: bool, cutoff: float = 1.0
) -> npt.NDArray[np.float64]:
    """The smallest one-sided p-value over looks first..last of SIMULATIONS paths of the
    interval's t statistic at the true value, sorted (seeded: the same for every run).
    Values above ``cutoff`` are exact only as far as being above it (they may read 1):
    a t statistic whose p-value is at most the cutoff is at least the normal quantile
    (the t distribution's tails are heavier), so only those are worked out. That holds
    for a cutoff up to 0.5 (1.0: every p-value)."""
    if 0.5 < cutoff < 1.0:
        raise ValueError(f"cutoff {cutoff} is neither at most 0.5 nor 1")
    try:
        path: Path | None = _cached_at(first, last, paired, cutoff)
    except (OSError, RuntimeError, KeyError):  # no home folder to keep it in
        path = None
    found = None if path is None else _read_cached(path, cutoff)
    if found is None:
        found = _simulate_smallest(first, last, paired, cutoff)
        if path is not None:
            _write_cached(path, found, cutoff)
    return found


def _simulate_smallest(
    first: int, last: int, paired: bool, cutoff: float
) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng([20261206, first, last, int(paired)])
    found = []
    floor = float(special.ndtri(1.0 - cutoff)) if cutoff < 1.0 else -np.inf
    for _ in range(SIMULATIONS // _CHUNK):
        looks = simulate_looks(rng, _CHUNK, first, last, paired=paired)
        t = looks.estimate / looks.se
        near = t >= floor
        p = np.ones_like(t)
        p[near] = special.stdtr(np.broadcast_to(looks.df, t.shape)[near], -t[near])
        found.append(p.min(axis=1))
    return np.sort(np.concatenate(found))


# -- the simulation's results, kept between runs ------------------------------------------------
def cache_root() -> Path:
    """Where worked-out look levels are kept: ``$PIPELINE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/pipeline`` (``~/.cache/pipeline``)."""
    root = os.environ.get("PIPELINE_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "pipeline")


def _cached_at(first: int, last: int, paired: bool, cutoff: float) -> Path:
    """The file of one schedule's smallest p-values, named by everything they depend on:
    in a folder named by the simulation (its size, this module's source: its seed and
    method; numpy's and scipy's versions: their generator and t distribution), a file
    named by the schedule and the cutoff."""
    import scipy

    method = hashlib.sha256(
        repr((SIMULATIONS, _CHUNK, np.__version__, scipy.__version__)).encode()
        + Path(__file__).read_bytes()
    ).hexdigest()[:16]
    return cache_root() / "looks" / method / f"{first}-{last}-{int(paired)}-{cutoff!r}.npy"


def _read_cached(path: Path, cutoff: float) -> npt.NDArray[np.float64] | None:
    """The cached values (those at most the cutoff, sorted), padded with 1 as simulated,
    or None when there are none that could be simulated so (a missing or damaged file)."""
    try:
        kept = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if (
        kept.dtype != np.float64
        or kept.ndim != 1
        or kept.size > SIMULATIONS
        or not np.all(np.isfinite(kept))
        or not np.all((kept >= 0) & (kept <= cutoff))
        or not np.all(np.diff(kept) >= 0)
    ):
        return None
    return np.concatenate([kept, np.ones(SIMULATIONS - kept.size)])


def _write_cached(path: Path, found: npt.NDArray[np.float64], cutoff: float) -> None:
    """Keep what a later run would simulate again (nothing when the folder is not
    writable): the values at most the cutoff, written whole or not at all."""
    kept = found[found <= cutoff] if cutoff < 1.0 else found
    part: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as file:
            part = Path(file.name)
            np.save(file, kept, allow_pickle=False)
        part.replace(path)
        for other in path.parent.parent.iterdir():  # what older methods simulated
            if other.is_dir() and other != path.parent:
                shutil.rmtree(other, ignore_errors=True)
            elif not other.is_dir():
                other.unlink(missing_ok=True)
    except OSError:
        if part is not None:
            with contextlib.suppress(OSError):
                part.unlink()


@dataclass(frozen=True)
class Looks:
    """Simulated comparisons at every look: paths × looks arrays of the log-ratio
    estimate, its standard error and degrees of freedom (Welch's, or paired)."""

    estimate: npt.NDArray[np.float64]
    se: npt.NDArray[np.float64]
    df: npt.NDArray[np.float64]

    def decided(self, one_sided: float, bound: float) -> tuple[npt.NDArray[np.bool_], ...]:
        """Per path and look: whether the interval at 1 − 2·one_sided lies above
        ``bound`` (log scale), and whether it lies below."""
        half = special.stdtrit(self.df, 1.0 - one_sided) * self.se
        return self.estimate - half > bound, self.estimate + half < bound


def simulate_looks(
    rng: np.random.Generator,
    paths: int,
    first: int,
    last: int,
    *,
    paired: bool,
    log_ratio: float = 0.0,
    sigma: float = 1.0,
) -> Looks:
    """``paths`` comparisons of two cells with normal noise ``sigma`` on the log scale and
    a true log ratio ``log_ratio``, looked at with first..last trials a cell (paired: the
    per-round log ratios, each the difference of two draws)."""
    draws = rng.standard_normal((paths, last, 2)) * sigma
    draws[..., 0] += log_ratio
    if paired:
        draws = draws[..., :1] - draws[..., 1:]
    n = np.arange(1, last + 1, dtype="float64")[first - 1 :, None]
    total = np.cumsum(draws, axis=1)[:, first - 1 :]
    squares = np.cumsum(draws * draws, axis=1)[:, first - 1 :]
    mean = total / n
    variance = np.maximum(squares - n * mean**2, 0.0) / (n - 1) / n  # of each mean
    looks = n[:, 0]
    if paired:
        se = np.sqrt(variance[..., 0])
        return Looks(mean[..., 0], se, np.broadcast_to(looks - 1, se.shape))
    var_a, var_b = variance[..., 0], variance[..., 1]
    df = (var_a + var_b) ** 2 / ((var_a**2 + var_b**2) / (looks - 1))  # Welch-Satterthwaite
    return Looks(mean[..., 0] - mean[..., 1], np.sqrt(var_a + var_b), df)
