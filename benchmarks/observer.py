"""The observer must not disturb: what watching a trial costs, whether it biases a parallel
speedup, and how much the machine's speed drifted meanwhile.

* **Cost**: real trials (cpu_pure, 120 items, 4 to 8 s each) under sequential, threads ×2
  and processes ×2, observed with the default sampling; the observing process's CPU time
  over the trial's life, as a share of one core (goal: at most 2% in steady state), beside
  the sampler's own share. The first second of a trial is sampled densely, so shorter
  trials pay more.
* **Bias**: a CPU-bound 2-worker process cell and its sequential baseline (cpu_pure), with
  sampling at the default and off, interleaved trial by trial; the speedup under each
  with its 95% interval (the product's own estimator), and their difference (goal: within
  the intervals, under 2%).
* **Drift**: the reference loop timed before each of those trials: its median, spread and
  the slowest and fastest moments relative to the median.
"""

from __future__ import annotations

import statistics
import sys

import numpy as np

from pipeline.analysis import inference
from pipeline.execution import observer
from pipeline.execution.runner import execute_in_process
from pipeline.execution.trial import Measurement, Sampling, TrialRequest

ITERATIONS = 1_000_000  # cpu_pure: about 50 ms an item on the reference machine
DEFAULT = Sampling()
OFF = Sampling(memory="off")


def trial(model: str, workers: int, items: int, sampling: Sampling) -> Measurement:
    """One real cpu_pure trial."""
    request = TrialRequest(
        sys.executable, "cpu_pure", model, workers, 1024, items, 300.0, 1,
        {"iterations": ITERATIONS}, sampling=sampling,
    )  # fmt: skip
    measured = execute_in_process(request)
    if measured.status != "ok":
        raise SystemExit(f"{model} trial failed: {measured.error}")
    return measured


def cost(repetitions: int) -> None:
    print("observer cost: cpu_pure, 120 items, default sampling (10 ms, uss)")
    for model, workers in (("sequential", 1), ("threads", 2), ("processes-fork", 2)):
        shares, sampler = [], []
        for _ in range(repetitions):
            measured = trial(model, workers, 120, DEFAULT)
            shares.append((measured.observer_cpu_s or 0.0) / measured.process_s)
            sampler.append((measured.sampler_cpu_s or 0.0) / measured.process_s)
        print(
            f"  {model:>15} ×{workers}: observer {statistics.median(shares):6.2%} of one core "
            f"(range {min(shares):.2%} to {max(shares):.2%}), sampler "
            f"{statistics.median(sampler):.2%}  (goal: at most 2%)"
        )


def bias(rounds: int) -> list[float]:
    """Speedups with sampling on and off, interleaved; returns the reference times seen."""
    walls: dict[tuple[str, str], list[float]] = {}
    references = []
    for _ in range(rounds):
        for name, sampling in (("default", DEFAULT), ("off", OFF)):
            for model, workers in (("sequential", 1), ("processes-fork", 2)):
                measured = trial(model, workers, 8, sampling)
                walls.setdefault((name, model), []).append(float(measured.result["work_s"]))
                references.append(measured.reference_s or float("nan"))
    print(f"sampling bias: cpu_pure, 8 items, processes-fork ×2 vs sequential, {rounds} rounds")
    speedups = {}
    for name in ("default", "off"):
        found = inference.ratio(
            walls[(name, "sequential")], walls[(name, "processes-fork")], level=0.95
        )
        speedups[name] = found.ratio
        print(f"  sampling {name:>7}: {found.ratio:.3f}× [{found.low:.3f}, {found.high:.3f}]")
    difference = speedups["default"] / speedups["off"] - 1
    print(
        f"  difference (default vs off): {difference:+.2%}  (goal: under 2%, within the intervals)"
    )
    return references


def drift(references: list[float]) -> None:
    seconds = np.array([r for r in references if r > 0])
    usual = float(np.median(seconds))
    speed = usual / seconds
    print(
        f"drift: reference loop ({observer.REFERENCE_LOOPS} iterations, median of "
        f"{observer.REFERENCE_REPEATS}) {usual * 1000:.2f} ms median over {len(seconds)} "
        f"trials; CV {np.std(seconds, ddof=1) / np.mean(seconds):.1%}; machine speed "
        f"{speed.min():.2f} to {speed.max():.2f} of the median"
    )


def main(repetitions: int = 2, rounds: int = 20) -> None:
    cost(repetitions)
    drift(bias(rounds))


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
