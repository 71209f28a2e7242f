"""What else an advise run says about the user's function, beyond the fastest
configuration: where its time goes (CPU or waiting), what a process pool costs per item
and at what item cost it starts to pay, the memory each worker adds, whether its results
come out the same under every model (thread safety), and whether a free-threaded build
keeps the GIL off when the user's modules load. Pure functions on the run's frames.

The cost model of a process pool of k workers (k' = min(k, usable cores) of them at
once) over N items of work w each:

    batch ≈ S + N · (w + a + c · bytes) / k'

S: the pool's start and stop (measured), a: its fixed cost per item, c · bytes: moving an
item and its result as pickles (c from a measured round trip of one item and result,
bytes their pickled sizes); a + c · bytes is measured as a whole by a pool of one worker
against sequential. Sequential takes N · w, so processes pay from the item cost
w* = (S / N + (a + c · bytes) / k') / (1 − 1 / k').
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..status import TrialStatus
from .advice import BASELINE, Config, Measured


@dataclass(frozen=True)
class CostModel:
    """Where a batch's time goes, and the break-even item cost of processes."""

    items: int
    item_s: float  # w: the work of one item, sequentially
    cpu_share: float  # CPU time over wall time, sequentially (1: CPU-bound, 0: waiting)
    per_item_s: float | None  # a + c·bytes: a process pool's extra cost per item
    serialise_s: float | None  # c·bytes: pickling an item and its result, and back
    bytes_moved: float | None  # an item's and a result's pickled sizes
    pool_s: float | None  # S: the best process configuration's start and stop
    parallel: int  # k'
    break_even_s: float | None  # w*, or None when processes cannot pay (k' = 1)

    @property
    def fixed_s(self) -> float | None:
        """a: the per-item cost that is not moving bytes."""
        if self.per_item_s is None:
            return None
        return max(self.per_item_s - (self.serialise_s or 0.0), 0.0)

    def processes_s(self, item_s: float) -> float:
        """The model's batch time of the process pool at item cost ``item_s``."""
        return (self.pool_s or 0.0) + self.items * (item_s + (self.per_item_s or 0.0)) / max(
            self.parallel, 1
        )


def cost_model(
    data: Measured,
    trials: pd.DataFrame,
    facts: pd.DataFrame,
    details: dict[int, dict[str, Any]],
    best_processes: Config | None,
    cores: float,
    items: int,
) -> CostModel | None:
    """The cost model from the baseline, the default process pool of one worker (chunksize
    1) and the best process configuration; None without a baseline. An item's work is
    the function's own time (each item timed where it ran), without the harness's."""
    baseline = data.baseline()
    if baseline is None or items < 1:
        return None
    base = _ok(trials, baseline.cell_id)
    if base.empty:
        return None
    work = float(base["wall_s"].median())
    service = [
        found for found in (_service(details, t) for t in base["trial_id"]) if found is not None
    ]
    cpu = float(((base["cpu_user_s"] + base["cpu_sys_s"]) / base["wall_s"]).median())
    single = [
        c for c in data.usable() if c.kind == "processes" and c.workers == 1 and c.chunksize == 1
    ]
    per_item = None
    if single:
        pool = _overheads(details, _ok(trials, single[0].cell_id)["trial_id"])
        loop = _overheads(details, base["trial_id"])
        if pool is not None and loop is not None:
            per_item = max(pool - loop, 0.0)
    serialise = _fact(facts, baseline.cell_id, "pickle_round_trip_s")
    moved = _sum_or_none(
        _fact(facts, baseline.cell_id, "item_pickle_bytes"),
        _fact(facts, baseline.cell_id, "result_pickle_bytes"),
    )
    pool_s = parallel = None
    if best_processes is not None:
        rows = _ok(trials, best_processes.cell_id)
        pool_s = float((rows["startup_s"] + rows["shutdown_s"]).median())
        parallel = int(min(best_processes.workers, max(cores, 1)))
    item_s = float(np.median(service)) if service else work / items
    model = CostModel(items, item_s, cpu, per_item, serialise, moved, pool_s, parallel or 1, None)
    return _with_break_even(model)


def _with_break_even(model: CostModel) -> CostModel:
    if model.parallel <= 1 or model.pool_s is None or model.per_item_s is None:
        return model
    k = model.parallel
    found = (model.pool_s / model.items + model.per_item_s / k) / (1 - 1 / k)
    return CostModel(**{**model.__dict__, "break_even_s": found})


def _service(details: dict[int, dict[str, Any]], trial_id: Any) -> float | None:
    """The median time the function itself took per item in one trial (each work item
    timed where it ran)."""
    items = details.get(int(trial_id), {}).get("items", [])
    times = [item["service_s"] for item in items if item.get("service_s") is not None]
    return float(np.median(times)) if times else None


def _overheads(details: dict[int, dict[str, Any]], trial_ids: Any) -> float | None:
    """The median over trials of the work time not spent in the function, per work item:
    for a pool of one worker, its dispatch cost; sequentially, the harness's own."""
    found = []
    for trial_id in trial_ids:
        detail = details.get(int(trial_id), {})
        items = detail.get("items", [])
        times = [item.get("service_s") for item in items]
        if items and None not in times and detail.get("work_s") is not None:
            found.append((float(detail["work_s"]) - float(sum(times))) / len(items))
    return float(np.median(found)) if found else None


def _ok(trials: pd.DataFrame, cell_id: int) -> pd.DataFrame:
    rows = trials[trials["cell_id"].eq(cell_id) & trials["status"].eq(TrialStatus.OK)]
    return rows.astype({"wall_s": "float64", "startup_s": "float64", "shutdown_s": "float64"})


def _fact(facts: pd.DataFrame, cell_id: int, name: str) -> float | None:
    rows = facts[facts["cell_id"].eq(cell_id) & facts["name"].eq(name)]
    values = pd.to_numeric(rows["value"], errors="coerce").dropna()
    return float(values.median()) if not values.empty else None


def _sum_or_none(*values: float | None) -> float | None:
    return (
        None if any(v is None for v in values) else float(sum(v for v in values if v is not None))
    )


def memory_per_worker(data: Measured, summary: pd.DataFrame) -> dict[int, float]:
    """Each configuration's median peak PSS above the baseline's, per worker (bytes)."""
    baseline = data.baseline()
    pss = dict(
        zip(summary["cell_id"], pd.to_numeric(summary["median_peak_pss_bytes"]), strict=True)
    )
    if baseline is None or not math.isfinite(pss.get(baseline.cell_id, math.nan)):
        return {}
    return {
        c.cell_id: (pss[c.cell_id] - pss[baseline.cell_id]) / max(c.workers, 1)
        for c in data.configs
        if c.model != BASELINE and math.isfinite(pss.get(c.cell_id, math.nan))
    }


@dataclass(frozen=True)
class Mismatch:
    """A configuration whose results differ from the baseline's on some items."""

    config: Config
    items: tuple[int, ...]  # the items that differed in some trial
    trials: int  # trials with a difference
    of: int  # trials compared


def mismatches(
    data: Measured, trials: pd.DataFrame, details: dict[int, dict[str, Any]]
) -> tuple[list[Mismatch], str]:
    """The configurations whose item results (digests) differ from the baseline's, and a
    note when they cannot be compared (the baseline's own results vary from trial to
    trial: time or randomness in them)."""
    baseline = data.baseline()
    if baseline is None:
        return [], "no sequential baseline to compare results with"
    reference = [
        _digests(details.get(int(t), {})) for t in _ok(trials, baseline.cell_id)["trial_id"]
    ]
    reference = [r for r in reference if r]
    if not reference:
        return [], "no results recorded"
    if any(r != reference[0] for r in reference[1:]):
        return [], "the results vary from run to run even sequentially, so they were not compared"
    found = []
    for config in data.configs:
        if config.cell_id == baseline.cell_id:
            continue
        compared = [
            _digests(details.get(int(t), {})) for t in _ok(trials, config.cell_id)["trial_id"]
        ]
        compared = [c for c in compared if c]
        differing = [
            {i for i, (a, b) in enumerate(zip(c, reference[0], strict=False)) if a != b}
            for c in compared
        ]
        bad = [d for d in differing if d]
        if bad:
            items = tuple(sorted(set().union(*bad)))
            found.append(Mismatch(config, items, len(bad), len(compared)))
    return found, ""


def _digests(detail: dict[str, Any]) -> list[str]:
    """A trial's item digests in item order (its work items' lists, chunk after chunk)."""
    out: list[str] = []
    for item in sorted(detail.get("items", []), key=lambda item: item.get("index", 0)):
        value = item.get("value")
        if not isinstance(value, list):
            return []
        out.extend(str(v) for v in value)
    return out


@dataclass(frozen=True)
class Readiness:
    """A free-threaded interpreter loading the user's modules."""

    interpreter: str
    gil_enabled: bool  # after the import
    modules: tuple[str, ...]  # those that turned it on


def readiness(data: Measured, facts: pd.DataFrame) -> list[Readiness]:
    """For each free-threaded interpreter of the run: did importing the user's modules
    turn the GIL on, and which modules did."""
    found = []
    for interpreter in sorted({c.interpreter for c in data.configs if c.free_threaded}):
        cells = [c.cell_id for c in data.configs if c.interpreter == interpreter]
        rows = facts[facts["cell_id"].isin(cells)]
        enabled = pd.to_numeric(
            rows[rows["name"].eq("gil_enabled_after_import")]["value"], errors="coerce"
        )
        modules = sorted(
            {str(n).split(":", 1)[1] for n in rows["name"] if str(n).startswith("gil_enabled_by:")}
        )
        found.append(
            Readiness(
                interpreter, bool(np.nanmax(enabled)) if enabled.size else False, tuple(modules)
            )
        )
    return found
