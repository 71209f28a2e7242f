"""Plain helpers the tests share (fixtures are in conftest.py): real trials of built-in
tasks, a fake executor with exact timings, interpreters for the interpreter tests."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.analysis.inference import Decision, Ratio, Rule, decide, ratio
from pipeline.analysis.sequential import schedule_of
from pipeline.execution.runner import execute_in_process
from pipeline.execution.trial import Measurement, TrialRequest

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent

# What the running test has used, by marker name (conftest.py resets it for every test and
# fails a test that used something it is not marked with): None outside a test.
USES: set[str] | None = None


def note_use(marker: str) -> None:
    """Record that the running test uses what ``marker`` stands for."""
    if USES is not None:
        USES.add(marker)


def needs(*markers: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Put under @pytest.fixture: every test that uses the fixture gets ``markers``
    (conftest.py), e.g. a shared fixture that runs real trials gives them processes."""

    def declare(function: Callable[..., object]) -> Callable[..., object]:
        function.markers = markers  # type: ignore[attr-defined]
        return function

    return declare


# A spec for the fake executor: io_sleep sequential and threads x4, three repetitions.
FAKE_SPEC = """\
name: fake
repetitions: 3
warmup: 1
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [4]
  payload: [1KiB]
"""


def fake_execute(request: TrialRequest) -> Measurement:
    """Sequential takes 0.4 s, four threads 0.1 s: a speedup of exactly 4."""
    wall_s = 0.4 if request.model == "sequential" else 0.1
    result = {
        "work_s": wall_s,
        "startup_s": 0.0,
        "shutdown_s": 0.0,
        "cpu_user_s": 0.01,
        "cpu_sys_s": 0.0,
        "items_done": request.items,
        "items_failed": 0,
        "items": [{"index": i, "latency_s": wall_s} for i in range(request.items)],
    }
    return Measurement(
        status="ok", result=result, process_s=wall_s + 0.05, peak_rss_bytes=10_000_000
    )


def measure(
    task: str,
    model: str,
    *,
    workers: int = 2,
    items: int = 4,
    payload: int = 1024,
    timeout_s: float = 60.0,
    **params: object,
) -> Measurement:
    """Run one real trial of a built-in task in a fresh worker process."""
    return execute_in_process(
        TrialRequest(sys.executable, task, model, workers, payload, items, timeout_s, 1, params)
    )


@dataclass(frozen=True)
class Question:
    """Is ``first`` more than (1 + margin) × scale × ``second``? (a time over a time: a
    speedup of ``second`` against ``first``). ``within``: is first / (scale × second)
    inside [1/(1+margin), 1+margin]? A ``control`` (a case the claim's judgement must
    refuse) is judged at the same looks but keeps no round going."""

    first: str
    second: str
    margin: float
    scale: float = 1.0
    within: bool = False
    control: bool = False

    def answered(self, decision: Decision) -> bool:
        if self.within:
            return decision in (Decision.SAME, Decision.MORE, Decision.LESS)
        return decision is Decision.MORE or decision.rules_out_more


@dataclass
class Judged:
    """A question's interval and decision at the look where the rounds stopped."""

    question: Question
    found: Ratio
    decision: Decision
    rounds: int
    times: dict[str, list[float]]

    def __str__(self) -> str:
        q = self.question
        shown = {name: [round(t, 4) for t in times] for name, times in self.times.items()}
        return (
            f"{q.first} / ({q.scale:g} × {q.second}): {self.found.text(q.margin)} at "
            f"{self.found.level:.1%} over {self.rounds} rounds: {self.decision}; {shown}"
        )


def judge_in_rounds(
    measure_one: Callable[[str], float],
    configs: list[str],
    questions: list[Question],
    *,
    first: int = 5,
    last: int = 15,
) -> list[Judged]:
    """Measure every config once a round (in a rotating order, so that drift falls on
    each alike) and answer the questions as the product decides a comparison in an
    adaptive run: the paired interval by round of the ratio of geometric means, at the
    level of its repeated intervals over the looks from ``first`` to ``last`` rounds
    (inference.Rule, sequential.py), placed against the question's margin. It looks after
    every round from ``first`` on and stops once every question is answered: where the
    machine is too noisy to answer in ``first`` rounds it measures more, as a run does,
    with error rates that hold over every look (never a retry, never a best-of-N); what
    is still open at ``last`` stays undecided, and the caller's assertion says so."""
    rule = Rule(schedule=schedule_of(first, last), paired=True)
    times: dict[str, list[float]] = {name: [] for name in configs}
    judged: list[Judged] = []
    for number in range(last):
        shift = number % len(configs)
        for name in configs[shift:] + configs[:shift]:
            times[name].append(measure_one(name))
        if number + 1 < first:
            continue
        rounds = np.arange(number + 1)
        judged = []
        for q in questions:
            second = [q.scale * t for t in times[q.second]]
            found = ratio(times[q.first], second, level=rule.level(), pairs=(rounds, rounds))
            judged.append(Judged(q, found, decide(found, q.margin), number + 1, times))
        if all(j.question.answered(j.decision) for j in judged if not j.question.control):
            break
    return judged


def other_programs_now() -> list[str]:
    """What a run starting now would warn about other programs using the CPU (the same
    reading and thresholds: environment.capture, machine.other_programs)."""
    from pipeline.analysis import machine
    from pipeline.execution import environment, records

    return machine.other_programs(records.environment_row(environment.capture()))


def work_s(task: str, model: str, **options: object) -> float:
    """The work time of one real trial (its status checked)."""
    measured = measure(task, model, **options)
    assert measured.status == "ok", measured.error
    return float(measured.result["work_s"])


def payload_bytes(size: int, seed: int = 1) -> bytes:
    """The payload a worker makes for ``size`` and ``seed`` (reproducible random bytes)."""
    return random.Random(seed).randbytes(size)


def free_threaded_python() -> str:
    """A free-threaded interpreter for the tests, or skip (fail where CI requires one)."""
    candidates = [os.environ.get("PIPELINE_TEST_PYTHON_FT", ""), ROOT / ".python-ft/bin/python3t"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            note_use("free_threaded")
            return str(candidate)
    if os.environ.get("PIPELINE_REQUIRE_PYTHON_FT") == "1":
        pytest.fail("PIPELINE_REQUIRE_PYTHON_FT=1 but no free-threaded interpreter was found")
    pytest.skip("no free-threaded interpreter: run `make python-ft` (.ci/run does)")


def fake_python(tmp_path: Path, script: str) -> str:
    """An executable that answers the probe like a (broken or old) interpreter would."""
    path = tmp_path / "fakepython"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


class LocalCluster:
    """A real Dask scheduler and named workers on 127.0.0.1, started as docs/spec.md's cluster
    section says (``--nthreads 1 --resources host=1``); a context manager that stops them
    all (``kill(name)`` SIGKILLs one worker mid-run)."""

    def __init__(
        self, folder: Path, names: tuple[str, ...] = ("alpha", "beta"), *, pin: bool = False
    ) -> None:
        self.folder = folder
        self.names = names
        self.pin = pin  # each worker (and its trials) on a CPU of its own, like a host
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.address = ""

    def _start(self, name: str, *arguments: str, cpu: int | None = None) -> None:
        dask = str(Path(sys.executable).parent / "dask")
        pinned = ["taskset", "--cpu-list", str(cpu)] if cpu is not None else []
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        with (self.folder / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            self.processes[name] = subprocess.Popen(
                [*pinned, dask, *arguments], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
            )

    def __enter__(self) -> LocalCluster:
        note_use("cluster")
        try:
            return self._start_all()
        except BaseException:
            self.__exit__()  # nothing started may outlive a failed start
            raise

    def _start_all(self) -> LocalCluster:
        scheduler_file = self.folder / "scheduler.json"
        self._start(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        )
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if time.monotonic() > deadline or self.processes["scheduler"].poll() is not None:
                raise RuntimeError(f"dask scheduler did not start: {self.log('scheduler')}")
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for name in self.names:
            self.add(name)
        if self.names:
            self.wait_for(len(self.names))
        return self

    def add(self, name: str) -> None:
        """Start one more worker (no nanny: a killed worker stays dead)."""
        cpus = sorted(os.sched_getaffinity(0))
        cpu = cpus[len(self.processes) % len(cpus)] if self.pin else None
        self._start(
            name,
            "worker",
            self.address,
            "--nthreads",
            "1",
            "--resources",
            "host=1",
            "--name",
            name,
            "--no-nanny",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
            cpu=cpu,
        )

    def wait_for(self, count: int) -> None:
        """Wait until ``count`` workers are registered with the scheduler."""
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=60)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-2000:]

    def kill(self, name: str) -> None:
        """SIGKILL one worker."""
        self.processes[name].kill()
        self.processes[name].wait(timeout=10)

    def __exit__(self, *_exc: object) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
