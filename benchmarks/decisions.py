"""Does the default run decide? Runs a spec (default experiments/quick.yaml) several times
in a row as `make run` does (`pipeline run`, report included), and prints each run's time
and verdicts, how many claims each decided, and how much pairing trials by round narrowed
the intervals (paired against Welch's half-width on the log scale, same trials).

    python -m benchmarks.decisions [SPEC] [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline import app
from pipeline.analysis import claims, inference, stats
from pipeline.analysis.inference import Rule
from pipeline.status import Verdict
from pipeline.storage import store


def pairing_effect(results: store.Store, run_id: int) -> list[tuple[float, int]]:
    """Per comparison with a paired interval: paired half-width / Welch half-width (log
    scale, both at 95%), and the trials of its smaller side."""
    trials = results.trials_frame(run_id)
    summary = stats.numeric_summary(results.summary_frame(run_id))
    data = claims.gather_evidence(summary, trials, results.facts_frame(run_id), Rule())
    ratios = []
    for family in data.evidence.values():
        for e in family:
            paired = inference.ratio_of(e.first, e.second, level=0.95, paired=True)
            welch = inference.ratio_of(e.first, e.second, level=0.95, paired=False)
            if paired.paired and welch.known and welch.high > welch.low:
                width = float(np.log(paired.high / paired.low) / np.log(welch.high / welch.low))
                ratios.append((width, min(e.first.values.size, e.second.values.size)))
    return ratios


def main(spec: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = f"sqlite:///{Path(folder, 'decisions.db')}"
        print(f"{spec}, {runs} runs in a row (pipeline run, report included)")
        effects: list[tuple[float, int]] = []
        for number in range(1, runs + 1):
            started_s = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pipeline", "run", spec, "--db", db, "--out", folder, "-q"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            elapsed_s = time.perf_counter() - started_s
            results = app.open_store(db)
            found = app.verdicts(results, number)
            decided = [v for v in found if Verdict(v.verdict).decided]
            print(f"run {number}: {elapsed_s:.0f} s, {len(decided)} claims decided")
            for verdict in found:
                if verdict.verdict != Verdict.NOT_MEASURED:
                    print(f"  {verdict.verdict:13} {verdict.title}: {verdict.headline}")
            effects += pairing_effect(results, number)
        for least, which in ((0, "comparisons"), (20, "comparisons of 20 trials or more")):
            widths = [width for width, n in effects if n >= least]
            if widths:
                low, high = np.quantile(widths, [0.25, 0.75])
                print(
                    "pairing by round: paired / Welch interval width, median "
                    f"{statistics.median(widths):.2f} (quartiles {low:.2f}-{high:.2f}) over "
                    f"{len(widths)} {which}"
                )


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "experiments/quick.yaml",
        int(sys.argv[2]) if len(sys.argv) > 2 else 5,
    )
