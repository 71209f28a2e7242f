"""How the pipeline's timings compare with pyperf's, on three functions.

Each function of ``benchmarks/accuracy_tasks.py`` (pure-Python CPU work, SHA-256 in C
that releases the GIL, a 20 ms sleep) is timed, in each of several rounds, by

* pyperf: a generated script calling ``pyperf.Runner().bench_func`` in a subprocess,
  its JSON output read back with ``pyperf.Benchmark.load`` (values are per call);
* the pipeline: ``python -m pipeline run`` on a generated spec with one sequential cell
  per function and one item per trial (so ``wall_s`` is one call), reading ``wall_s`` of
  the ok, measured (not warm-up) trials from the ``trial`` table; once with
  ``warmup_items: 0`` and once with ``warmup_items: 1`` where the spec knows that key,
  else once without it; and once more with ``trial_process: warm`` (trials forked from a
  fork server) where the spec knows that key. The three functions share one run per
  setting (their trials interleaved in the run's shuffled rounds): each ``pipeline run``
  costs about 5 s of imports and bookkeeping, and one run instead of three keeps the
  total near 3 minutes.

The tools take turns in a round, in the reverse order every other round.

It prints, per function and round, each tool's median and coefficient of variation
(stdev / mean) and the ratio pipeline / pyperf of the medians, then the median ratio
over the rounds. Everything runs in subprocesses and a temporary folder.

Usage: ``python -m benchmarks.accuracy [ROUNDS]`` (default 3; about 2.5 minutes on 2 cores).
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import SpecError
from pipeline.planning.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
TASKS_MODULE = "benchmarks.accuracy_tasks"
PAYLOAD_BYTES = 1024
ITEMS = 1  # work items per pipeline trial: wall_s is then the time of one call
REPETITIONS = 18  # measured pipeline trials per run
WARMUP_TRIALS = 1  # pipeline trials run first and discarded (the spec's `warmup`)
PYPERF_PROCESSES = 6
PYPERF_VALUES = 3  # per process
PYPERF_WARMUPS = 1  # per process, discarded
PYPERF_MIN_TIME_S = 0.1  # pyperf's default: loops are calibrated so a value takes this long
NO_KEY = None  # the warmup_items setting when the spec does not know the key
FRESH, WARM = "fresh", "warm"  # trial_process settings; fresh is also the older pipelines'
Setting = tuple[int | None, str]  # warmup_items (or NO_KEY), trial_process
PYPERF = "pyperf"

PYPERF_SCRIPT = """\
import json
import sys

sys.path.insert(0, {root!r})

import pyperf

from {module} import {function}

runner = pyperf.Runner()
runner.bench_func({function!r}, {function}, bytes({payload_bytes}), json.loads({params!r}))
"""


@dataclass(frozen=True)
class Function:
    """A function of accuracy_tasks, its parameters and what it is."""

    name: str
    params: dict[str, Any]
    summary: str

    @property
    def task(self) -> str:
        """Its name as a pipeline user task."""
        return f"{TASKS_MODULE}:{self.name}"


FUNCTIONS = (
    Function("cpu_nbody", {"steps": 2500}, "pure-Python n-body, 2500 steps (holds the GIL)"),
    Function("cpu_sha256", {"rounds": 25}, "hashlib.sha256 over 1 MiB x 25 (releases the GIL)"),
    Function("sleep", {"seconds": 0.02}, "time.sleep(0.02)"),
)


@dataclass(frozen=True)
class Timing:
    """Times of one call, in seconds, as one tool measured them in one round."""

    values_s: tuple[float, ...]
    not_ok: int = 0  # pipeline trials that did not end ok (none of their times kept)
    loops: int = 1  # pyperf calls timed together per value

    @property
    def median_s(self) -> float:
        return statistics.median(self.values_s)

    @property
    def cv(self) -> float:
        """Coefficient of variation: sample standard deviation over the mean."""
        return statistics.stdev(self.values_s) / statistics.mean(self.values_s)


# times every function one way, with its temporary files in the folder
Tool = Callable[[Path], dict[str, Timing]]


class BenchmarkFailed(Exception):
    """A pyperf or pipeline subprocess failed; the message holds its output."""


def import_pyperf() -> Any:
    """pyperf, imported lazily, with an install hint when it is missing."""
    try:
        import pyperf  # type: ignore[import-untyped]
    except ImportError:
        raise SystemExit(
            "benchmarks.accuracy needs pyperf: pip install -e '.[dev]' (or pip install pyperf)"
        ) from None
    return pyperf


def run_checked(command: Sequence[str], cwd: Path) -> None:
    """Run a command; raise BenchmarkFailed with its output when it fails."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchmarkFailed(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )


def time_with_pyperf(pyperf: Any, function: Function, folder: Path) -> Timing:
    """pyperf's values per call of the function (warm-up values left out)."""
    script = folder / f"pyperf_{function.name}.py"
    script.write_text(
        PYPERF_SCRIPT.format(
            root=str(ROOT),
            module=TASKS_MODULE,
            function=function.name,
            payload_bytes=PAYLOAD_BYTES,
            params=json.dumps(function.params),
        )
    )
    output = folder / f"pyperf_{function.name}.json"
    output.unlink(missing_ok=True)
    run_checked(
        [
            sys.executable,
            str(script),
            "--quiet",
            f"--processes={PYPERF_PROCESSES}",
            f"--values={PYPERF_VALUES}",
            f"--warmups={PYPERF_WARMUPS}",
            f"--min-time={PYPERF_MIN_TIME_S}",
            f"--output={output}",
        ],
        folder,
    )
    benchmark = pyperf.Benchmark.load(str(output))
    return Timing(tuple(benchmark.get_values()), loops=int(benchmark.get_loops()))


def spec_text(warmup_items: int | None, trial_process: str = FRESH) -> str:
    """A spec of one sequential cell per function, each trial running it once."""
    spec: dict[str, Any] = {
        "name": "accuracy",
        "description": "benchmarks.accuracy: the pipeline's timings against pyperf's",
        "repetitions": REPETITIONS,
        "warmup": WARMUP_TRIALS,
        "items": ITEMS,
        "timeout": 60,
        "python_path": [str(ROOT)],
        "matrix": {
            "task": [function.task for function in FUNCTIONS],
            "model": ["sequential"],
            "workers": [1],
            "payload": [PAYLOAD_BYTES],
        },
        "params": {function.task: function.params for function in FUNCTIONS},
    }
    if warmup_items is not NO_KEY:
        spec["warmup_items"] = warmup_items
    if trial_process != FRESH:
        spec["trial_process"] = trial_process
    return yaml.safe_dump(spec, sort_keys=False)


def supported(folder: Path, key: str, text: str) -> bool:
    """Whether the spec accepts the top-level ``key`` (``text``: a spec that uses it)."""
    try:
        parse_spec(text, str(folder / "probe.yaml"))
    except SpecError as error:
        if key in str(error):
            return False
        raise
    return True


def pipeline_settings(folder: Path) -> list[Setting]:
    """warmup_items 0 and 1 (fresh), and warm with 0, as far as the spec knows the keys."""
    if not supported(folder, "warmup_items", spec_text(1)):
        return [(NO_KEY, FRESH)]
    settings: list[Setting] = [(0, FRESH), (1, FRESH)]
    if supported(folder, "trial_process", spec_text(0, WARM)):
        settings.append((0, WARM))
    return settings


def time_with_pipeline(folder: Path, setting: Setting) -> dict[str, Timing]:
    """The pipeline's wall_s per item of each function's ok, measured trials, from one
    run of every function (their trials interleaved in the run's shuffled rounds)."""
    warmup_items, trial_process = setting
    label = f"pipeline_{warmup_items}_{trial_process}"
    spec = folder / f"{label}.yaml"
    spec.write_text(spec_text(warmup_items, trial_process))
    database = folder / f"{label}.db"
    database.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pipeline", "run", str(spec)]
    run_checked([*command, "--db", f"sqlite:///{database}", "--no-report", "-q"], ROOT)
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT cell.task, trial.status, trial.wall_s FROM trial "
            "JOIN cell ON cell.id = trial.cell_id WHERE NOT trial.warmup"
        ).fetchall()
    timings: dict[str, Timing] = {}
    for function in FUNCTIONS:
        statuses = [status for task, status, _ in rows if task == function.task]
        values_s = tuple(
            wall_s / ITEMS
            for task, status, wall_s in rows
            if task == function.task and status == "ok"
        )
        if len(values_s) < 2:
            raise BenchmarkFailed(
                f"{spec}: {function.task}: only {len(values_s)} ok trials of {len(statuses)}"
            )
        timings[function.name] = Timing(values_s, not_ok=len(statuses) - len(values_s))
    return timings


def time_every_function_with_pyperf(pyperf: Any, folder: Path) -> dict[str, Timing]:
    """pyperf's timing of each function, one after another."""
    return {function.name: time_with_pyperf(pyperf, function, folder) for function in FUNCTIONS}


def tools(pyperf: Any, settings: Sequence[Setting]) -> dict[str, Tool]:
    """Every way the functions are timed, by label: pyperf, then the pipeline per setting."""
    measures: dict[str, Tool] = {PYPERF: partial(time_every_function_with_pyperf, pyperf)}
    for setting in settings:
        measures[setting_label(setting)] = partial(time_with_pipeline, setting=setting)
    return measures


def measure_round(
    measures: dict[str, Tool],
    results: dict[str, dict[str, list[Timing]]],
    folder: Path,
    reverse: bool,
) -> None:
    """One round: the functions timed every way, the ways in one order or the reverse
    (alternated over rounds, so that neither tool always runs first)."""
    labels = list(measures)
    for label in reversed(labels) if reverse else labels:
        for name, timing in measures[label](folder).items():
            results[name].setdefault(label, []).append(timing)


def setting_label(setting: Setting) -> str:
    """How a setting of the pipeline is named in the output."""
    warmup_items, trial_process = setting
    if warmup_items is NO_KEY:
        return "pipeline"
    return f"pipeline{', warm' if trial_process == WARM else ''}, warmup_items {warmup_items}"


def print_warmups(settings: Sequence[Setting]) -> None:
    """What warm-up each measurement includes."""
    print("What each measurement includes as warm-up:")
    described = {
        "pyperf:": (
            f"{PYPERF_PROCESSES} worker processes (and 1 more that calibrates the loops), "
            f"each {PYPERF_WARMUPS} warm-up value (discarded), then {PYPERF_VALUES} values; "
            "a value is the mean of `loops` calls timed together (loops calibrated so that "
            f"a value takes at least {PYPERF_MIN_TIME_S * 1e3:.0f} ms), so a process's "
            "first call is in its warm-up value, thrown away."
        ),
        "pipeline:": (
            f"a fresh process per trial ({REPETITIONS} trials, after {WARMUP_TRIALS} "
            f"warm-up trial that is discarded), {ITEMS} item per trial timed alone as "
            "wall_s; the module (and its 1 MiB buffer) is imported before timing, but the "
            "first call in that process is timed unless warmup_items >= 1."
        ),
    }
    if any(trial_process == WARM for _, trial_process in settings):
        described["warm:"] = (
            "trial_process: warm, each trial a process forked from a fork server that has "
            "imported the worker (not the task's module), a server per round."
        )
    if (NO_KEY, FRESH) in settings:
        described["warmup_items:"] = (
            "this pipeline's spec does not know the key, so the pipeline ran only without "
            "it (the first call of each trial is timed)."
        )
    for who, what in described.items():
        print(
            textwrap.fill(what, width=92, initial_indent=f"  {who:<14}", subsequent_indent=" " * 16)
        )


PYPERF_COLUMNS = f"{'median':>9} {'CV':>6} {'loops':>5}"
PIPELINE_COLUMNS = f"{'median':>9} {'CV':>6} {'ratio':>7}"


def print_function(function: Function, timings: dict[str, list[Timing]]) -> None:
    """A row per round: each tool's median and CV, and each pipeline setting's ratio to
    pyperf's median; then the median ratio over the rounds."""
    print(f"\n{function.name}: {function.summary}")
    references = timings[PYPERF]
    settings = [label for label in timings if label != PYPERF]
    groups = [PYPERF.center(len(PYPERF_COLUMNS))]
    groups += [label.center(len(PIPELINE_COLUMNS)) for label in settings]
    print(f"  {'':5}  " + "  ".join(groups).rstrip())
    print(f"  {'round':>5}  " + "  ".join([PYPERF_COLUMNS] + [PIPELINE_COLUMNS] * len(settings)))
    ratios: dict[str, list[float]] = {label: [] for label in settings}
    notes = []
    for index, reference in enumerate(references):
        cells = [f"{describe(reference)} {reference.loops:>5}"]
        for label in settings:
            timing = timings[label][index]
            ratios[label].append(timing.median_s / reference.median_s)
            cells.append(f"{describe(timing)} {ratios[label][-1]:>6.3f}x")
            if timing.not_ok:
                notes.append(f"round {index + 1}, {label}: {timing.not_ok} trials not ok")
        print(f"  {index + 1:>5}  " + "  ".join(cells))
    for note in notes:
        print(f"  ({note}, left out)")
    over_rounds = ", ".join(
        f"{statistics.median(ratios[label]):.3f}x ({label})" for label in settings
    )
    print(f"  median ratio pipeline/pyperf over {len(references)} rounds: {over_rounds}")


def describe(timing: Timing) -> str:
    """A timing's median and CV, in the widths of the table's columns."""
    return f"{timing.median_s * 1e3:6.2f} ms {timing.cv:>6.1%}"


def main(rounds: int = 3) -> None:
    """Time every function ``rounds`` times each way and print the comparison."""
    pyperf = import_pyperf()
    started_s = time.perf_counter()
    results: dict[str, dict[str, list[Timing]]] = {function.name: {} for function in FUNCTIONS}
    with tempfile.TemporaryDirectory(prefix="pipeline-accuracy-") as name:
        folder = Path(name)
        settings = pipeline_settings(folder)
        print_warmups(settings)
        measures = tools(pyperf, settings)
        for index in range(rounds):
            try:
                measure_round(measures, results, folder, reverse=index % 2 == 1)
            except BenchmarkFailed as error:
                raise SystemExit(f"error: {error}") from None
            elapsed_s = time.perf_counter() - started_s
            print(f"round {index + 1} of {rounds} measured ({elapsed_s:.0f} s)", flush=True)
    for function in FUNCTIONS:
        print_function(function, results[function.name])
    total_s = time.perf_counter() - started_s
    print(
        "\nmedian: of the per-call times; CV: stdev / mean; ratio: pipeline median / "
        f"pyperf median of the same round. Total {total_s:.0f} s."
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
