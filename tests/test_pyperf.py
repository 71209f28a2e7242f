"""pyperf interchange, checked with pyperf itself: our export is a suite pyperf reads
(stats, compare_to), and pyperf's own output imports and exports back with its values."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyperf
import pytest

from pipeline import app
from pipeline.cli import cli
from pipeline.results import pyperf as interchange
from pipeline.storage.store import Store

from .helpers import FAKE_SPEC, fake_execute


def pyperf_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyperf", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def fake_run(write_spec, sqlite_url) -> tuple[str, int]:
    """A finished run of two cells (sequential 0.4 s, threads x4 0.1 s, 3 trials each)."""
    outcome = app.run(
        app.plan(write_spec(FAKE_SPEC)), sqlite_url, execute=fake_execute, reports_dir=None
    )
    return sqlite_url, outcome.run_id


@pytest.fixture(scope="module")
def pyperf_output(tmp_path_factory) -> Path:
    """pyperf's own output: a real pyperf timeit run (3 processes of 2 values, a warm-up
    each) of two statements, combined into one suite the way pyperf does."""
    folder = tmp_path_factory.mktemp("pyperf")
    files = []
    for name, statement in (("sum", "sum(range(100))"), ("sorted", "sorted(range(100))")):
        path = folder / f"{name}.json"
        found = pyperf_cli(
            "timeit",
            "--name",
            name,
            "-p",
            "3",
            "-n",
            "2",
            "-w",
            "1",
            "-l",
            "1",
            statement,
            "-o",
            str(path),
        )
        assert found.returncode == 0, found.stderr
        files.append(str(path))
    combined = folder / "suite.json"
    suite = pyperf.BenchmarkSuite.load(files[0])
    suite.add_benchmark(pyperf.Benchmark.load(files[1]))
    suite.dump(str(combined))
    return combined


def test_an_export_is_a_suite_pyperf_reads_with_each_cells_trials(fake_run, tmp_path, cli_runner):
    url, run_id = fake_run
    path = tmp_path / "run.json"
    result = cli_runner.invoke(
        cli, ["export", str(run_id), "--db", url, "-f", "pyperf", "-o", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "2 benchmarks, 6 values" in result.output
    suite = pyperf.BenchmarkSuite.load(str(path))
    found = {bench.get_name(): bench.get_values() for bench in suite.get_benchmarks()}
    trials = Store(url).trials_frame(run_id)
    for name, values in found.items():
        model = "sequential" if " sequential " in name else "threads"
        expected = trials[trials["model"].eq(model)].sort_values("sequence")["wall_s"].tolist()
        assert list(values) == expected
    assert sorted(found) == [
        "io_sleep sequential x1 1KiB " + Path(sys.executable).name,
        "io_sleep threads x4 1KiB " + Path(sys.executable).name,
    ]
    assert suite.get_metadata()["pipeline_run"] == run_id
    stats = pyperf_cli("stats", str(path))
    assert stats.returncode == 0, stats.stderr
    assert re.search(r"Median \+- MAD: +400 ms", stats.stdout)  # sequential's 0.4 s trials


def test_compare_to_pairs_the_same_cells_of_two_runs(fake_run, tmp_path, write_spec):
    url, first = fake_run
    second = app.run(app.plan(write_spec(FAKE_SPEC)), url, execute=fake_execute, reports_dir=None)
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for run_id, path in zip((first, second.run_id), paths, strict=True):
        app.export_pyperf(Store(url), run_id, path)
    compared = pyperf_cli("compare_to", "--table", *map(str, paths))
    assert compared.returncode == 0, compared.stderr
    # identical fake timings: pyperf pairs both cells by name, and finds no change
    assert "no benchmark in common" not in compared.stderr + compared.stdout
    for model in ("sequential x1", "threads x4"):
        assert f"io_sleep {model} 1KiB" in compared.stdout
    assert "no change" in compared.stdout


def test_pyperf_output_round_trips_with_identical_values(pyperf_output, tmp_path, cli_runner):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    result = cli_runner.invoke(cli, ["import-pyperf", str(pyperf_output), "--db", url])
    assert result.exit_code == 0, result.output
    assert "2 benchmarks, 12 values imported" in result.output
    store = Store(url)
    run = store.resolve_run("latest")
    trials = store.trials_frame(run.id)
    assert set(trials["model"]) == {"sequential"}
    assert set(trials["task"]) == {"sum", "sorted"}
    back = tmp_path / "back.json"
    app.export_pyperf(store, run.id, back)
    original = pyperf.BenchmarkSuite.load(str(pyperf_output))
    exported = pyperf.BenchmarkSuite.load(str(back))
    for bench in original.get_benchmarks():
        again = exported.get_benchmark(bench.get_name())
        assert again.get_values() == bench.get_values()  # the same floats, in order
        assert again.get_nrun() == bench.get_nrun() == 3  # pyperf's own runs, kept apart
    summary = store.summary_frame(run.id)  # stored as any run: cell statistics too
    assert summary["n_ok"].tolist() == [6, 6]
    compared = pyperf_cli("compare_to", str(pyperf_output), str(back))
    assert compared.returncode == 0, compared.stderr
    assert "no benchmark in common" not in compared.stderr + compared.stdout


def test_warm_ups_are_stored_as_warm_up_trials(pyperf_output, tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    run_id, benchmarks, values = app.import_pyperf(url, pyperf_output)
    warm = Store(url).done_trials(run_id)
    assert (benchmarks, values) == (2, 12)
    assert int(warm["warmup"].astype(bool).sum()) == 6  # one per pyperf process


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read a pyperf JSON file"),
        ('{"version": "0.1", "benchmarks": []}', "not a pyperf file of format 1.0"),
        ('{"version": "1.0", "benchmarks": []}', "no benchmarks in the file"),
        (
            '{"version": "1.0", "benchmarks": [{"runs": []}]}',
            "benchmarks[0]: the benchmark has no name",
        ),
        (
            '{"version": "1.0", "benchmarks": '
            '[{"metadata": {"name": "rss", "unit": "byte"}, "runs": []}]}',
            "benchmarks[0] (rss): its unit is 'byte'",
        ),
        (
            '{"version": "1.0", "benchmarks": '
            '[{"metadata": {"name": "t"}, "runs": [{"values": ["x"]}]}]}',
            "benchmarks[0] (t): runs[0] has a value that is not a time",
        ),
        (
            '{"version": "1.0", "benchmarks": '
            '[{"metadata": {"name": "t"}, "runs": [{"values": [true]}]}]}',
            "benchmarks[0] (t): runs[0] has a value that is not a time",
        ),
        (
            '{"version": "1.0", "benchmarks": [{"metadata": {"name": "t"}, "runs": [5]}]}',
            "benchmarks[0] (t): runs[0] is not a run",
        ),
        (
            '{"version": "1.0", "benchmarks": [{"metadata": ["x"], "runs": []}]}',
            "benchmarks[0]: not a benchmark",
        ),
        (
            '{"version": "1.0", "metadata": ["x"], "benchmarks": [{"runs": []}]}',
            "the suite's metadata is not a mapping",
        ),
        (
            '{"version": "1.0", "benchmarks": '
            '[{"metadata": {"name": "t"}, "runs": [{"warmups": [0.1]}]}]}',
            "benchmarks[0] (t): runs[0] has a warm-up that is not a (loops, value) pair",
        ),
    ],
)
def test_a_file_that_is_not_pyperfs_is_one_line_exit_2_and_nothing_written(
    content, message, tmp_path, cli_runner
):
    path = tmp_path / "bad.json"
    path.write_text(content)
    database = tmp_path / "results.db"
    result = cli_runner.invoke(cli, ["import-pyperf", str(path), "--db", f"sqlite:///{database}"])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not database.exists()


def test_names_tell_interpreters_apart_by_the_end_of_their_path_where_it_can():
    assert interchange._short_names(["/a/python3.11", "/b/python3.13t"]) == {
        "/a/python3.11": "python3.11",
        "/b/python3.13t": "python3.13t",
    }
    same = ["/a/bin/python", "/b/bin/python"]
    assert interchange._short_names(same) == {name: name for name in same}


def test_metadata_pyperf_would_refuse_is_left_out():
    cleaned = interchange._clean({"a": "", "b": "two\nlines", "c": None, "d": float("nan"), "e": 2})
    assert cleaned == {"b": "two lines", "e": 2}
    json.dumps(cleaned)


def test_a_run_without_an_ok_trial_is_not_exported(write_spec, sqlite_url, tmp_path, cli_runner):
    from pipeline.execution.trial import Measurement

    def failing(request):
        return Measurement(status="error", error="boom")

    outcome = app.run(
        app.plan(write_spec(FAKE_SPEC)), sqlite_url, execute=failing, reports_dir=None
    )
    path = tmp_path / "run.json"
    result = cli_runner.invoke(
        cli, ["export", str(outcome.run_id), "--db", sqlite_url, "-f", "pyperf", "-o", str(path)]
    )
    assert result.exit_code == 2
    assert "has no ok measured trial to export to pyperf" in result.output
    assert not path.exists()
