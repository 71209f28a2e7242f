"""Spec validation: one exact line per problem (file, line, field), exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import cli
from pipeline.errors import SpecError
from pipeline.spec import load_spec, parse_size

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
            "{f}:3: matrix.task[0]: unknown task 'cpu_puer' (built-in: cpu_pure, io_sleep; or "
            "module:function)",
        ),
        (
            GOOD.replace("threads]", "thread]"),
            "{f}:4: matrix.model[1]: unknown model 'thread' (choose from sequential, threads, "
            "asyncio, processes, processes-fork, processes-spawn, processes-forkserver, "
            "subinterpreters)",
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
            "{f}:8: exclude[0].modle: unknown axis 'modle' (axes: task, model, workers, payload, "
            "interpreter)",
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
    ],
)
def test_invalid_spec_is_one_line_with_exit_2_and_no_database(
    write_spec, cli_runner, tmp_path: Path, body: str, message: str
) -> None:
    path = write_spec(body)
    db_file = tmp_path / "results.db"
    result = cli_runner.invoke(cli, ["run", str(path), "--db", f"sqlite:///{db_file}"])
    assert result.exit_code == 2
    assert result.stderr == f"error: {message.format(f=path)}\n"
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
