"""Spec validation: one exact line per problem (file, line, field), exit 2, nothing written."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from pipeline.cli import cli
from pipeline.errors import SpecError
from pipeline.planning.fields import parse_size
from pipeline.planning.spec import load_spec

GOOD = """\
name: ok
matrix:
  task: [cpu_pure, io_sleep]
  model: [sequential, threads]
  workers: [1, 2]
  payload: [1KiB]
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (GOOD + "colour: red\n", "{f}:7: colour: unknown key"),
        (
            GOOD.replace("  payload", "  workerz: [1]\n  payload"),
            "{f}:6: matrix.workerz: unknown key",
        ),
        (
            GOOD.replace("cpu_pure,", "cpu_puer,"),
            "{f}:3: matrix.task[0]: unknown task 'cpu_puer' (did you mean cpu_pure? built-in: "
            "cpu_pure, cpu_gil_released, io_sleep, io_file, io_network, mixed, transfer, sync, "
            "fault, memory, call; or module:function)",
        ),
        (
            GOOD.replace("threads]", "thread]"),
            "{f}:4: matrix.model[1]: unknown model 'thread' (did you mean threads? choose from "
            "sequential, threads, asyncio, processes, processes-fork, processes-spawn, "
            "processes-forkserver, subinterpreters)",
        ),
        (
            GOOD.replace("[1, 2]", "[1, 0]"),
            "{f}:5: matrix.workers[1]: workers must be at least 1, got 0",
        ),
        (
            GOOD.replace("[1KiB]", "[1KiB, 2KB]"),
            "{f}:6: matrix.payload[1]: expected a size such as 1024, '1KiB' or '4 MiB', got '2KB'",
        ),
        (GOOD.replace("[1, 2]", "[]"), "{f}:5: matrix.workers: must list at least one value"),
        (GOOD.replace("[1, 2]", "[1, 2, 1]"), "{f}:5: matrix.workers: duplicate value 1"),
        (GOOD.replace("  payload: [1KiB]\n", ""), "{f}:2: matrix.payload: required key is missing"),
        ("name: [oops\n", "{f}:2: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
        ("- just a list\n", "{f}:1: the spec must be a mapping of keys such as name, matrix"),
        (
            GOOD + "params:\n  cpu_pure: {iterations: -5}\n",
            "{f}:8: params.cpu_pure.iterations: must be at least 1, got -5",
        ),
        (
            GOOD + "params:\n  cpu_pure: {iters: 5}\n",
            "{f}:8: params.cpu_pure.iters: cpu_pure has no parameter 'iters' (known: iterations)",
        ),
        (
            GOOD + "exclude:\n  - {modle: threads}\n",
            "{f}:8: exclude[0].modle: unknown axis 'modle' (axes and swept parameters: task, "
            "model, workers, payload, interpreter)",
        ),
        (
            GOOD.replace("  payload", "  interpreter: [no-such-python-9]\n  payload"),
            "{f}:6: matrix.interpreter[0]: interpreter 'no-such-python-9' not found (not on PATH "
            "and not an executable path)",
        ),
        (
            GOOD.replace("name: ok", "name: has space"),
            "{f}:1: name: String should match pattern '^[A-Za-z0-9_-]+$'",
        ),
        # hostile input (docs/robustness.md: What we tried)
        (
            GOOD + "matrix:\n  task: [io_sleep]\n",
            "{f}:7: matrix: duplicate key (first on line 2; YAML would keep only the last)",
        ),
        (
            GOOD.replace("  workers", "  model: [threads]\n  workers"),
            "{f}:5: matrix.model: duplicate key (first on line 4; YAML would keep only the last)",
        ),
        (
            GOOD + "exclude:\n  - {model: [sequential, threads]}\n",
            "{f}:7: exclude: removes every cell of the matrix",
        ),
        (GOOD + "timeout: .inf\n", "{f}:7: timeout: Input should be a finite number"),
        (GOOD + "margin: .nan\n", "{f}:7: margin: Input should be a finite number"),
        (
            GOOD + "params:\n  io_sleep: {seconds: .inf}\n",
            "{f}:8: params.io_sleep.seconds: must be a finite number, got inf",
        ),
        (GOOD + "seed: -1\n", "{f}:7: seed: Input should be greater than or equal to 0"),
        (
            GOOD.replace("[1KiB]", "[1048576GiB]"),
            "{f}:6: matrix.payload[0]: '1048576GiB' is more than 1 TiB, the largest payload "
            "allowed",
        ),
        (
            GOOD.replace("[1KiB]", "[" + "9" * 400 + "]"),
            "{f}:6: matrix.payload[0]: " + "9" * 400 + " is more than 1 TiB, the largest "
            "payload allowed",
        ),
        (
            GOOD.replace("[1, 2]", "[1, 100000000]"),
            "{f}:5: matrix.workers[1]: 100000000 workers is more than 1024 (max_workers; raise "
            "it in the spec if the machine can take them)",
        ),
        (
            GOOD.replace("[1KiB]", "[1GiB]") + "items: 100000\n",
            "{f}:6: matrix.payload: 1 GiB × 100000 items × (2 workers + 1) needs 293.0 TiB, "
            "more than the {available} of memory available",
        ),
        (
            GOOD.replace("cpu_pure, io_sleep", "no_such_module:run"),
            "{f}:3: matrix.task[0]: no_such_module:run cannot be loaded by interpreter "
            "{python}: ModuleNotFoundError: No module named 'no_such_module'",
        ),
        (
            GOOD.replace("cpu_pure, io_sleep", "mine:run")
            + "params:\n  mine:run: {day: 2024-01-01}\n",
            "{f}:8: params.mine:run.day: cannot be stored as JSON (numbers, text, true/false, "
            "lists, mappings), got datetime.date(2024, 1, 1)",
        ),
    ],
)
def test_invalid_spec_is_one_line_with_exit_2_and_no_database(
    write_spec, cli_runner, tmp_path: Path, body: str, message: str
) -> None:
    path = write_spec(body)
    db_file = tmp_path / "results.db"
    result = cli_runner.invoke(cli, ["run", str(path), "--db", f"sqlite:///{db_file}"])
    assert result.exit_code == 2
    # the memory available changes from moment to moment: any amount is taken there
    expected = re.escape(message.format(f=path, python=sys.executable, available="AMOUNT"))
    pattern = f"error: {expected}\n".replace("AMOUNT", r"[\d.]+ [KMGT]?i?B")
    assert re.fullmatch(pattern, result.stderr), result.stderr
    assert not db_file.exists()


def test_missing_file(cli_runner, tmp_path: Path) -> None:
    result = cli_runner.invoke(cli, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: spec file not found\n"


def test_several_problems_are_counted(write_spec) -> None:
    path = write_spec(GOOD.replace("[1, 2]", "[0]").replace("threads]", "thread]"))
    with pytest.raises(SpecError, match=r"\(and 1 more problem\)$"):
        load_spec(path)


def test_good_spec_defaults_and_sizes(write_spec) -> None:
    spec = load_spec(write_spec(GOOD))
    assert (spec.repetitions, spec.warmup, spec.items, spec.timeout, spec.seed) == (
        5,
        1,
        8,
        60.0,
        1,
    )
    assert spec.matrix.payload == [1024]
    assert len(spec.hash) == 64


def test_scalar_axis_becomes_a_list(write_spec) -> None:
    spec = load_spec(write_spec(GOOD.replace("[1, 2]", "4")))
    assert spec.matrix.workers == [4]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (0, 0),
        (512, 512),
        ("512B", 512),
        ("1KiB", 1024),
        ("1.5 KiB", 1536),
        ("4MiB", 4 << 20),
        ("1GiB", 1 << 30),
    ],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_python_path_is_relative_to_the_spec(write_spec, tmp_path: Path) -> None:
    spec = load_spec(write_spec(GOOD + "python_path: [lib]\n"))
    assert spec.python_path == [str((tmp_path / "lib").resolve())]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("transfer: {transport: carrier}", "must be one of pickle, shared_memory, got 'carrier'"),
        ("transfer: {transport: [pickle, 3]}", "must be str, got 3"),
        ("transfer: {transport: []}", "an empty list sweeps nothing; give at least one value"),
        ("transfer: {transport: [pickle, pickle]}", "lists a value twice: ['pickle', 'pickle']"),
        ("io_file: {fsync: 1}", "must be bool, got 1"),
        ("mixed: {cpu_share: 1.5}", "must be at most 1, got 1.5"),
        ("sync: {increments: true}", "must be int, got True"),
    ],
)
def test_task_parameter_errors(write_spec, params: str, message: str) -> None:
    task = params.split(":")[0]
    body = GOOD.replace("cpu_pure, io_sleep", task) + f"params:\n  {params}\n"
    with pytest.raises(SpecError) as raised:
        load_spec(write_spec(body))
    field = params.split("{")[1].split(":")[0]
    index = "[1]" if message.startswith("must be str") else ""
    assert str(raised.value).endswith(f"params.{task}.{field}{index}: {message}")


def test_parameter_lists_and_exclude_lists_are_accepted(write_spec) -> None:
    body = GOOD.replace("cpu_pure, io_sleep", "transfer, fault").replace(
        "[1KiB]", "[1KiB, 2KiB]"
    ) + (
        "params:\n  transfer: {transport: [pickle, shared_memory]}\n"
        "  fault: {mode: [exit, segfault], item: 1}\n"
        "exclude:\n  - {task: [transfer, fault], workers: [2], payload: [1KiB, 2KiB]}\n"
    )
    spec = load_spec(write_spec(body))
    assert spec.params["fault"] == {"mode": ["exit", "segfault"], "item": 1}
    assert spec.exclude == [
        {"task": ["transfer", "fault"], "workers": [2], "payload": [1024, 2048]}
    ]


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        (
            "params:\n  io_sleep: {seconds: .nan}\n",
            8,
            "params.io_sleep.seconds: must be a finite number, got nan",
        ),
        (
            "params:\n  io_sleep: {seconds: [1, 1.0]}\n",
            8,
            "params.io_sleep.seconds: lists a value twice: [1, 1.0]",
        ),
        (
            "exclude:\n  - {model: thread}\n",
            8,
            "exclude[0].model: 'thread' is not in matrix.model, so this entry excludes nothing",
        ),
        (
            "exclude:\n  - {workers: [2, 3]}\n",
            8,
            "exclude[0].workers: 3 is not in matrix.workers, so this entry excludes nothing",
        ),
    ],
)
def test_values_that_would_silently_do_nothing_are_errors(write_spec, extra, line, message):
    path = write_spec(GOOD + extra)
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert str(raised.value) == f"{path}:{line}: {message}"


def test_fault_item_must_be_one_of_the_items(write_spec) -> None:
    body = GOOD.replace("cpu_pure, io_sleep", "fault") + "items: 4\nparams:\n  fault: {item: 4}\n"
    with pytest.raises(
        SpecError, match=r"params\.fault\.item: must be below items \(4\), or no item"
    ):
        load_spec(write_spec(body))


def test_adaptive_repetitions(write_spec) -> None:
    spec = load_spec(
        write_spec(GOOD + "repetitions: {min: 4, max: 20, target_ci: 0.03}\nbudget: 60\n")
    )
    assert spec.adaptive is not None
    assert (spec.min_repetitions, spec.adaptive.max, spec.adaptive.target_ci) == (4, 20, 0.03)
    assert load_spec(write_spec(GOOD)).min_repetitions == 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("repetitions: {min: 9, max: 4}\n", "repetitions.max: max (4) is below min (9)"),
        ("repetitions: {min: 1}\n", "repetitions.min: Input should be greater than or equal to 2"),
        ("repetitions: {target_ci: 2}\n", "repetitions.target_ci: Input should be less than 1"),
        (
            "budget: 30\n",
            "budget: a budget only applies to adaptive repetitions ({min, max, target_ci})",
        ),
    ],
)
def test_adaptive_repetition_errors(write_spec, extra: str, message: str) -> None:
    path = write_spec(GOOD + extra)
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert str(raised.value) == f"{path}:7: {message}"


# any YAML value, including the awkward ones: huge and negative numbers, inf and nan,
# dates, nulls, nested lists and mappings


def test_more_workers_than_the_user_may_run_processes_is_refused(write_spec) -> None:
    """`ulimit -u` (RLIMIT_NPROC) below the most workers: refused before anything runs."""
    import resource
    import subprocess

    path = write_spec(GOOD.replace("[1, 2]", "[1, 2048]") + "max_workers: 4096\n")

    def few_processes() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (2000, 2000))

    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(path), "--dry-run"],
        capture_output=True,
        text=True,
        preexec_fn=few_processes,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: {path}:5: matrix.workers: 2048 workers, but this user may run only 2000 "
        "processes (ulimit -u)\n"
    )


def test_sampling_and_warmup_items(write_spec) -> None:
    spec = load_spec(
        write_spec(GOOD + "sampling: {interval: 20ms, memory: rss}\nwarmup_items: 2\n")
    )
    assert (spec.sampling.interval, spec.sampling.memory, spec.warmup_items) == (0.02, "rss", 2)
    default = load_spec(write_spec(GOOD))
    assert (default.sampling.interval, default.sampling.memory) == (0.01, "uss")
    assert default.warmup_items == 0
    assert load_spec(write_spec(GOOD + "sampling: {interval: 0.5}\n")).sampling.interval == 0.5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "sampling: {interval: 10 minutes}\n",
            "sampling.interval: expected a duration such as 0.01, '10ms' or '0.5s', "
            "got '10 minutes'",
        ),
        ("sampling: {interval: 0.1ms}\n", "sampling.interval: Input should be greater than or"),
        ("sampling: {memory: smaps}\n", "sampling.memory: Input should be 'uss', 'rss' or 'off'"),
        (
            "sampling: {memory: off}\nlimits: {memory: 1GiB}\n",
            "sampling.memory: limits.memory needs the process tree sampled; with "
            "sampling.memory: off nothing checks it",
        ),
        ("warmup_items: -1\n", "warmup_items: Input should be greater than or equal to 0"),
    ],
)
def test_sampling_errors(write_spec, extra: str, message: str) -> None:
    path = write_spec(GOOD + extra)
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    assert str(raised.value).startswith(f"{path}:7: {message}")
