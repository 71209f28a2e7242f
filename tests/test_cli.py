"""End to end through the CLI: a tiny spec in real processes, read back with SQL. The
commands that only read share two real runs (the tiny_runs fixture). Runs and commands use
SQLite, except on both databases (db_url): the one end-to-end run (killed, then resumed),
and the storage's own tests, two runs writing at once and read-only queries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from pipeline import __version__
from pipeline.cli import cli
from pipeline.storage import store

from .helpers import FAKE_SPEC, TESTS_DIR, fake_execute, needs

TINY = """\
name: tiny
repetitions: 2
warmup: 1
items: 4
matrix:
  task: [io_sleep, "user_tasks:raise_error"]
  model: [sequential, threads]
  workers: [2]
  payload: [1KiB]
params:
  io_sleep: {seconds: 0.02}
python_path: [TESTS]
""".replace("TESTS", str(TESTS_DIR))


@dataclass(frozen=True)
class TinyRuns:
    """TINY run twice into one SQLite database through the command line."""

    db: str
    reports: Path  # where the first run published its report
    first: Result  # the first run, as `make run` does it
    second: Result  # the second, with --no-report -q


@pytest.fixture(scope="module")
@needs("processes")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    """The real runs the tests of the commands that only read share (none of them writes
    to the database): TINY run once publishing its report, then once more quietly."""
    folder = tmp_path_factory.mktemp("tiny")
    spec = folder / "spec.yaml"
    spec.write_text(TINY)
    db = f"sqlite:///{folder / 'results.db'}"
    runner = CliRunner()
    first = runner.invoke(cli, ["run", str(spec), "--db", db, "--out", str(folder / "reports")])
    second = runner.invoke(cli, ["run", str(spec), "--db", db, "--no-report", "-q"])
    return TinyRuns(db, folder / "reports", first, second)


def test_version(cli_runner) -> None:
    result = cli_runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"pipeline {__version__}\n"


def test_dry_run_lists_cells_and_writes_nothing(cli_runner, write_spec, tmp_path) -> None:
    db_file = tmp_path / "results.db"
    result = cli_runner.invoke(
        cli, ["run", str(write_spec(TINY)), "--dry-run", "--db", f"sqlite:///{db_file}"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "4 cells, 12 trials (4 warm-up + 8 measured); dry run: nothing was run or written"
    )
    assert not db_file.exists()


def test_run_stores_trials_and_publishes_report(cli_runner, tiny_runs) -> None:
    """What a run prints and stores, its report, the query command on its trials and its
    cells (with a bound parameter), and a report rebuilt for the latest run."""
    db, reports, result = tiny_runs.db, tiny_runs.reports, tiny_runs.first
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-2:] == [
        "run 1 finished: 4 error, 4 ok",
        f"report: {reports / 'run-1' / 'index.html'}",
    ]
    # the verdict table comes first: every claim, each with its verdict
    table = "\n".join(lines[:-2])
    assert "verdicts on the explainer's claims" in table
    assert table.count("not measured") + table.count("inconclusive") >= 10
    quiet = tiny_runs.second
    assert quiet.stdout.splitlines() == ["run 2 finished: 4 error, 4 ok"]
    page = (reports / "run-1" / "index.html").read_text()
    assert "<svg" in page
    assert "tiny" in page
    assert 'href="run-1/index.html"' in (reports / "index.html").read_text()

    query = cli_runner.invoke(
        cli,
        [
            "query",
            "--db",
            db,
            "--format",
            "json",
            "SELECT task, model, workers, status, items_done, wall_s, "
            "repetition FROM trial_results WHERE run_id = 1 ORDER BY task, model, "
            "repetition",
        ],
    )
    assert query.exit_code == 0, query.output
    rows = json.loads(query.stdout)
    assert [(r["task"], r["model"], r["workers"], r["status"], r["items_done"]) for r in rows] == (
        [("io_sleep", "sequential", 1, "ok", 4)] * 2
        + [("io_sleep", "threads", 2, "ok", 4)] * 2
        + [("user_tasks:raise_error", "sequential", 1, "error", 0)] * 2
        + [("user_tasks:raise_error", "threads", 2, "error", 0)] * 2
    )

    summary = cli_runner.invoke(
        cli,
        [
            "query",
            "--db",
            db,
            "-f",
            "csv",
            "SELECT model, n_ok, speedup FROM cell_summary WHERE task = :task AND run_id = 1 "
            "ORDER BY model",
            "-p",
            "task=io_sleep",
        ],
    )
    assert summary.exit_code == 0, summary.output
    lines = summary.stdout.splitlines()
    assert lines[0] == "model,n_ok,speedup"
    assert lines[1] == "sequential,2,1.0"
    # the speedup is the product's estimator on the stored trials: the ratio of the
    # geometric means of the wall times (the physics is judged in test_worker.py)
    logs = {
        model: np.log([r["wall_s"] for r in rows if (r["task"], r["model"]) == ("io_sleep", model)])
        for model in ("sequential", "threads")
    }
    expected = np.exp(logs["sequential"].mean() - logs["threads"].mean())
    assert lines[2].startswith("threads,2,")
    assert float(lines[2].split(",")[2]) == pytest.approx(expected, rel=1e-9)

    rebuilt = cli_runner.invoke(cli, ["report", "latest", "--db", db, "--out", str(reports)])
    assert rebuilt.exit_code == 0
    assert rebuilt.stdout == f"report: {reports / 'run-2' / 'index.html'}\n"


def test_report_of_unknown_run(cli_runner, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store.Store(url)  # an empty database
    result = cli_runner.invoke(cli, ["report", "7", "--db", url, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no run 7 in ")


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["show"],
        ["verdicts"],
        ["runs"],
        ["compare", "1", "2"],
        ["export", "latest"],
        ["publish"],
        ["query", "SELECT 1"],
    ],
)
def test_commands_that_only_read_never_create_a_database(cli_runner, tmp_path, command) -> None:
    missing = tmp_path / "missing.db"
    result = cli_runner.invoke(cli, [*command, "--db", f"sqlite:///{missing}"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"error: {missing}: ")
    assert "Traceback" not in result.output
    assert not missing.exists()


def small_claims_spec(tmp_path: Path) -> Path:
    """experiments/claims.yaml at small size: the same matrix, fewer and shorter trials."""
    import yaml

    spec = yaml.safe_load((TESTS_DIR.parent / "experiments" / "claims.yaml").read_text())
    spec.update(repetitions=2, warmup=0, items=4)
    spec.pop("budget", None)  # fixed repetitions here
    spec["matrix"]["payload"] = ["64KiB", "4MiB", "8MiB"]
    for entry in spec["exclude"]:
        if "payload" in entry:
            sizes = entry["payload"] if isinstance(entry["payload"], list) else [entry["payload"]]
            entry["payload"] = ["8MiB" if size == "32MiB" else size for size in sizes]
    spec["params"].update(
        cpu_pure={"iterations": 20000},
        io_sleep={"seconds": 0.01},
        io_network={"latency": 0.01},
        memory={"seconds": 0.05},
    )
    spec["params"]["sync"]["increments"] = 2000
    spec["params"]["cpu_gil_released"]["rounds"] = 1
    path = tmp_path / "claims-small.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.processes
def test_claims_spec_gives_every_claim_a_verdict(cli_runner, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'claims.db'}"
    spec = small_claims_spec(tmp_path)
    ran = cli_runner.invoke(cli, ["run", str(spec), "--db", db, "--out", str(tmp_path), "-q"])
    assert ran.exit_code == 0, ran.output
    result = cli_runner.invoke(cli, ["verdicts", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    found = {v["claim"]: v for v in json.loads(result.stdout)}
    assert list(found) == [
        "gil_threads_cpu",
        "free_threading",
        "subinterpreters",
        "processes_cpu",
        "gil_released_c_code",
        "threads_io",
        "memory",
        "startup",
        "communication",
        "shared_state",
        "fault_isolation",
    ]
    # claims.yaml runs on the current interpreter only: experiments/interpreters.yaml
    # measures free threading (and subinterpreters, where there is Python 3.14)
    elsewhere = {"free_threading", "subinterpreters"}
    assert {found[claim]["verdict"] for claim in elsewhere} == {"not measured"}
    allowed = {"supported", "contradicted", "nuanced", "inconclusive"}
    assert {
        claim: v["verdict"] in allowed for claim, v in found.items() if claim not in elsewhere
    } == dict.fromkeys(set(found) - elsewhere, True)  # every other claim is measured here
    # the crash outcomes do not depend on timing: threads die with the program, pools break
    assert found["fault_isolation"]["verdict"] == "nuanced"
    text = cli_runner.invoke(cli, ["verdicts", "--db", db, "--details"]).stdout
    assert "verdicts on the explainer's claims" in text  # the table, then every comparison
    assert "[NUANCED] A crash in a thread" in text
    page = (tmp_path / "run-1" / "index.html").read_text()
    assert page.index("Verdicts on the explainer") < page.index("<h2>Headlines</h2>")
    # the fault table: threads die with the program, a process pool breaks
    assert '<td class="fault-died">program died;' in page
    assert '<td class="fault-broken">program survived, pool broken;' in page
    assert page.count('role="img"') >= 3 * 9  # three figures a task section, and more


def test_publish_rebuilds_every_run_with_its_data_files(cli_runner, tmp_path, tiny_runs) -> None:
    db = tiny_runs.db
    site = tmp_path / "site"
    result = cli_runner.invoke(cli, ["publish", "--db", db, "--out", str(site)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"published 2 run(s): {site / 'index.html'}\n"
    for run_id in (1, 2):
        folder = site / f"run-{run_id}"
        trials = (folder / "trials.csv").read_text().splitlines()
        assert trials[0].startswith("run_id,cell_id,trial_id,task,variant,model")
        assert len(trials) == 1 + 4 * 2  # 4 cells (2 tasks x 2 models) x 2 repetitions
        assert (folder / "summary.csv").read_text().count("\n") == 1 + 4
        digest = (folder / "summary.md").read_text()
        assert digest.startswith(f"# Run tiny (#{run_id})\n")
        assert "| not measured | Threads cannot run pure-Python CPU work" in digest
        assert 'href="trials.csv"' in (folder / "index.html").read_text()
    index = (site / "index.html").read_text()
    assert index.index('href="run-2/index.html"') < index.index('href="run-1/index.html"')
    assert "9 not measured" not in index  # io_sleep threads vs sequential is measured
    assert 'href="explorer.html"' in index  # the explorer over both runs, beside it
    assert '"runs":[{"id":1' in (site / "explorer.html").read_text()


def test_runs_show_export_and_the_notebook_api(cli_runner, tmp_path, tiny_runs) -> None:
    import importlib.util

    import pipeline

    db = tiny_runs.db
    runs = cli_runner.invoke(cli, ["runs", "--db", db, "-f", "csv"])
    assert runs.exit_code == 0
    header, *rows = runs.stdout.splitlines()
    assert header == "id,name,status,started,duration_s,host,interpreters,trials"
    assert [row.split(",")[0] for row in rows] == ["2", "1"]  # the latest first
    for row in rows:
        assert row[2:].startswith("tiny,finished,")
        assert row.endswith(',"4 error, 4 ok"')
    shown = cli_runner.invoke(cli, ["show", "1", "--db", db])
    assert shown.exit_code == 0
    assert "run 1 tiny (finished)" in shown.stdout
    assert "name: tiny" in shown.stdout  # the spec itself
    assert "cell summary" in shown.stdout
    out = tmp_path / "trials.json"
    exported = cli_runner.invoke(cli, ["export", "1", "--db", db, "-f", "json", "-o", str(out)])
    assert exported.exit_code == 0
    assert exported.stdout == f"8 rows written to {out}\n"
    assert len(json.loads(out.read_text())) == 8
    bad = cli_runner.invoke(cli, ["export", "1", "--db", db, "--table", "cells"])
    assert bad.exit_code == 2
    assert bad.stderr == "error: --table: 'cells' is not one of trials, summary, facts\n"
    parquet = cli_runner.invoke(
        cli, ["export", "1", "--db", db, "-f", "parquet", "-o", str(tmp_path / "t.parquet")]
    )
    if importlib.util.find_spec("pyarrow") is None:
        assert parquet.exit_code == 2
        assert "needs pyarrow" in parquet.stderr
    else:
        assert parquet.exit_code == 0
    trials = pipeline.load_trials(db=db, run=1)
    summary = pipeline.load_summary(db=db)
    assert len(trials) == 8
    assert set(summary["model"]) == {"sequential", "threads"}
    missing = cli_runner.invoke(cli, ["show", "7", "--db", db])
    assert missing.exit_code == 2


def test_compare_two_runs_and_fail_above(cli_runner, write_spec, sqlite_url) -> None:
    from pipeline import app

    spec = write_spec(FAKE_SPEC.replace("repetitions: 3", "repetitions: 8"))
    jitter = iter([1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99] * 8)

    def slower_threads(factor):
        def execute(request):
            measured = fake_execute(request)
            scale = factor if request.model == "threads" else 1.0
            measured.result["work_s"] *= scale * next(jitter)
            return measured

        return execute

    for factor in (1.0, 1.5):
        app.run(app.plan(spec), sqlite_url, execute=slower_threads(factor), reports_dir=None)
    result = cli_runner.invoke(cli, ["compare", "1", "2", "--db", sqlite_url, "-f", "csv"])
    assert result.exit_code == 0, result.output
    import csv
    import io

    rows = {row["model"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["threads"]["verdict"] == "slower"
    assert 45 < float(rows["threads"]["change_%"]) < 56  # 1.5x, give or take the jitter
    assert float(rows["threads"]["ci_low_%"]) > 10
    assert rows["sequential"]["verdict"] == "not slower"
    assert float(rows["sequential"]["level"]) == pytest.approx(1 - 0.1 / 2)  # 2 cells
    gate = cli_runner.invoke(cli, ["compare", "1", "2", "--db", sqlite_url, "--fail-above", "10"])
    assert gate.exit_code == 1
    assert gate.stderr == (
        "1 cell(s) slower by more than 10% (interval wholly above, at 95.00% each)\n"
    )
    lenient = cli_runner.invoke(
        cli, ["compare", "1", "2", "--db", sqlite_url, "--fail-above", "80"]
    )
    assert lenient.exit_code == 0


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        (["run", "s.yaml", "--resume"], ["run", "s.yaml", "--resume", "latest"]),
        (["run", "s.yaml", "--resume", "-q"], ["run", "s.yaml", "--resume", "latest", "-q"]),
        (["run", "s.yaml", "--resume", "3"], ["run", "s.yaml", "--resume", "3"]),
        (["query", "SQL", "-p", "t", "io_sleep"], ["query", "SQL", "-p", "t=io_sleep"]),
        (["query", "SQL", "-p", "t=io_sleep"], ["query", "SQL", "-p", "t=io_sleep"]),
        (
            ["query", "SQL", "--param", "a", "1", "-p", "b=2"],
            ["query", "SQL", "--param", "a=1", "-p", "b=2"],
        ),
    ],
)
def test_argument_spellings_typer_cannot_take(given, meant) -> None:
    from pipeline.cli import normalise_args

    assert normalise_args(given) == meant
