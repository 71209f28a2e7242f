"""Adaptive repetitions against a fixed count, on the same matrix.

Runs ``benchmarks/adaptive.yaml`` adaptively (its ``repetitions: {min, max, target_ci}``),
then again with a fixed count: the largest number of trials
adaptive sampling gave any cell, the smallest fixed count sure to give every cell as many.
Prints, for both, the measured trials, the time they took and how many cells met the
target precision.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline import app
from pipeline.analysis import stats
from pipeline.storage import readonly

TRIALS = (
    "SELECT cell_id, position, status, wall_s FROM trial_results JOIN cell ON cell.id = cell_id"
)


def measure(spec_path: Path, folder: str, name: str, target: float) -> tuple[float, int, int, int]:
    """Run a spec; return its wall time, measured trials, most trials of a cell, and how
    many cells met the target precision."""
    url = f"sqlite:///{Path(folder, name + '.db')}"
    started_s = time.perf_counter()
    planned = app.plan(spec_path)
    app.run(planned, url, reports_dir=None)
    wall_s = time.perf_counter() - started_s
    trials = readonly.query(url, TRIALS)
    met = 0
    for _, cell in trials.groupby("position"):
        ok = cell.loc[cell["status"].eq("ok"), "wall_s"]
        # the sampler's own measure of precision, so "met" means what it means there
        met += stats.relative_half_width(ok) <= target
    counts = trials.groupby("cell_id").size()
    return wall_s, int(counts.sum()), int(counts.max()), met


def main(spec_path: str) -> None:
    spec = yaml.safe_load(Path(spec_path).read_text())
    target = float(spec["repetitions"]["target_ci"])
    cells = 0
    with tempfile.TemporaryDirectory() as folder:
        wall_s, trials, most, met = measure(Path(spec_path), folder, "adaptive", target)
        cells = len(
            readonly.query(f"sqlite:///{Path(folder, 'adaptive.db')}", "SELECT id FROM cell")
        )
        fixed_spec = {**spec, "repetitions": most, "name": "bench-fixed"}
        fixed_path = Path(folder, "fixed.yaml")
        fixed_path.write_text(yaml.safe_dump(fixed_spec))
        fixed_wall_s, fixed_trials, _, fixed_met = measure(fixed_path, folder, "fixed", target)
    bounds = spec["repetitions"]
    print(f"spec: {spec_path} ({cells} cells, target ±{target:.0%} on each median)")
    print(
        f"adaptive ({bounds['min']}-{bounds['max']} per cell): {trials:4d} trials "
        f"{wall_s:7.1f} s   {met}/{cells} cells met the target"
    )
    print(
        f"fixed ({most} per cell):      {fixed_trials:4d} trials {fixed_wall_s:7.1f} s   "
        f"{fixed_met}/{cells} cells met the target"
    )
    print(
        f"adaptive used {trials / fixed_trials:.0%} of the trials and "
        f"{wall_s / fixed_wall_s:.0%} of the time"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/adaptive.yaml")
