"""Runs on a real Dask cluster: a scheduler and named workers started on 127.0.0.1 as
docs/spec.md says. Spread shares trials among hosts without overlap; each makes the host an
axis; a worker or the orchestrator killed mid-run loses and doubles nothing. On SQLite: the
orchestrator stores a cluster's trials as any run's (tests/test_cli.py runs the end-to-end
run on PostgreSQL too)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

from pipeline import app
from pipeline.results import explore
from pipeline.storage import readonly
from tests.helpers import ROOT, LocalCluster

SPEC = """\
name: {name}
repetitions: {repetitions}
warmup: 1
timeout: 60
items: 4
hosts: {hosts}
matrix:
  task: [io_sleep]
  model: [sequential, threads]
  workers: [2, 4]
  payload: [1KiB]
params:
  io_sleep: {{seconds: {seconds}}}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One scheduler and workers alpha and beta, shared by the tests that kill nothing."""
    with LocalCluster(tmp_path_factory.mktemp("dask")) as started:
        yield started


def pipeline_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *arguments]


def start_run(spec: Path, url: str, address: str, **env: str) -> subprocess.Popen[str]:
    """`pipeline run SPEC --cluster ADDRESS` started in the background (``env`` added)."""
    return subprocess.Popen(
        pipeline_command("run", str(spec), "--db", url, "--cluster", address, "--no-report", "-q"),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run_pipeline(*arguments: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pipeline_command(*arguments),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def read_command(*arguments: str) -> subprocess.CompletedProcess[str]:
    """A command that only reads, run in this process: the function the console entry
    point calls (the runs above go through the entry point itself)."""
    from typer.testing import CliRunner

    from pipeline.cli import cli, normalise_args

    result = CliRunner().invoke(cli, normalise_args(list(arguments)))
    return subprocess.CompletedProcess(arguments, result.exit_code, result.stdout, result.stderr)


def write(
    tmp_path: Path, hosts: str = "spread", repetitions: int = 3, seconds: float = 0.02
) -> Path:
    path = tmp_path / f"{hosts}.yaml"
    path.write_text(
        SPEC.format(name=f"cluster-{hosts}", hosts=hosts, repetitions=repetitions, seconds=seconds)
    )
    return path


def trials(url: str) -> pd.DataFrame:
    return readonly.query(
        url,
        "SELECT t.id, t.cell_id, t.repetition, t.warmup, t.status, t.host, t.started_at, "
        "t.finished_at, t.note, c.host AS cell_host FROM trial t JOIN cell c ON c.id = t.cell_id",
    )


def assert_each_trial_once(found: pd.DataFrame, cells: int, repetitions: int) -> None:
    assert len(found) == cells * (repetitions + 1)  # one warm-up each
    assert not found.duplicated(["cell_id", "repetition", "warmup"]).any()


def assert_no_overlap_per_host(found: pd.DataFrame) -> None:
    for host, rows in found.groupby("host"):
        rows = rows.assign(
            started_at=pd.to_datetime(rows["started_at"], format="ISO8601", utc=True),
            finished_at=pd.to_datetime(rows["finished_at"], format="ISO8601", utc=True),
        ).sort_values("started_at")
        later_starts = rows["started_at"].iloc[1:].to_numpy()
        earlier_ends = rows["finished_at"].iloc[:-1].to_numpy()
        assert (later_starts >= earlier_ends).all(), f"trials overlap on {host}"


def test_spread_shares_trials_among_hosts_without_overlap(
    cluster: LocalCluster, sqlite_url: str, tmp_path: Path
) -> None:
    done = run_pipeline(
        "run",
        str(write(tmp_path)),
        "--db",
        sqlite_url,
        "--cluster",
        cluster.address,
        "--no-report",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    found = trials(sqlite_url)
    assert_each_trial_once(found, cells=3, repetitions=3)
    assert set(found["status"]) == {"ok"}
    assert set(found["host"]) == {"alpha", "beta"}  # both hosts took trials
    assert set(found["cell_host"]) == {""}  # spread: cells belong to no one host
    assert_no_overlap_per_host(found)
    hosts = readonly.query(sqlite_url, "SELECT name, cpu_logical, interpreters_json FROM run_host")
    assert sorted(hosts["name"]) == ["alpha", "beta"]
    assert (hosts["cpu_logical"] >= 1).all()
    shown = read_command("show", "--db", sqlite_url)
    assert "alpha" in shown.stdout, shown.stdout
    assert "beta" in shown.stdout, shown.stdout


def test_each_runs_the_whole_matrix_on_every_host(
    cluster: LocalCluster, sqlite_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    done = run_pipeline(
        "run",
        str(write(tmp_path, "each")),
        "--db",
        sqlite_url,
        "--cluster",
        cluster.address,
        "--out",
        str(out),
        "-q",
    )
    assert done.returncode == 0, done.stderr
    found = trials(sqlite_url)
    assert_each_trial_once(found, cells=6, repetitions=3)
    assert (found["host"] == found["cell_host"]).all()  # every trial ran on its cell's host
    assert_no_overlap_per_host(found)
    summary = readonly.query(sqlite_url, "SELECT host, model, workers, speedup FROM cell_summary")
    assert sorted(summary["host"].unique()) == ["alpha", "beta"]
    assert len(summary) == 6
    # sleeps overlap on every host: the product's verdict over both hosts' series
    verdicts = app.verdicts(app.open_store(sqlite_url), "latest")
    threads_io = next(v for v in verdicts if v.claim == "threads_io")
    assert threads_io.verdict == "supported", threads_io
    pages = list(out.glob("*/index.html"))
    assert len(pages) == 1
    page = pages[0].read_text()
    assert "<h3>Hosts compared</h3>" in page  # the hosts table
    assert "Hosts compared: median speedup over sequential" in page  # the chart (inline SVG)
    assert "Verdicts per host" in page
    compared = read_command("compare", "latest", "--hosts", "alpha", "beta", "--db", sqlite_url)
    assert compared.returncode == 0, compared.stderr
    assert "io_sleep" in compared.stdout
    # the explorer carries the same comparison of the two hosts
    (carried,) = explore.explorer_data(app.open_store(sqlite_url, read_only=True))["compared"]
    assert (carried["host_a"], carried["host_b"]) == ("alpha", "beta")
    rule = app.compare_hosts(app.open_store(sqlite_url), 1, "alpha", "beta")
    assert [row["verdict"] for row in carried["rows"]] == rule["verdict"].tolist()
    judged = read_command("verdicts", "--host", "beta", "--json", "--db", sqlite_url)
    assert judged.returncode == 0, judged.stderr
    threads_io = next(v for v in json.loads(judged.stdout) if v["claim"] == "threads_io")
    assert threads_io["verdict"] == "supported"  # 4 threads overlap 4 sleeps on beta alone
    assert "host beta" in threads_io["conditions"]
    unknown = read_command("verdicts", "--host", "gamma", "--db", sqlite_url)
    assert unknown.returncode == 2
    assert "no host 'gamma' (hosts: alpha, beta)" in unknown.stderr


def test_an_interpreter_a_host_lacks_is_refused_before_the_run(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    spec = write(tmp_path)
    spec.write_text(
        spec.read_text().replace(
            "  payload: [1KiB]\n", "  payload: [1KiB]\n  interpreter: [current, python9.99]\n"
        )
    )
    url = f"sqlite:///{tmp_path / 'never.db'}"
    done = run_pipeline("run", str(spec), "--db", url, "--cluster", cluster.address, "-q")
    assert done.returncode == 2
    assert "host alpha: interpreter python9.99" in done.stderr
    assert not (tmp_path / "never.db").exists()


def test_a_scheduler_without_hosts_is_refused(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, names=()) as empty:
        done = run_pipeline(
            "run",
            str(write(tmp_path)),
            "--db",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--cluster",
            empty.address,
        )
    assert done.returncode == 2
    assert "offers the 'host' resource" in done.stderr
    assert "--resources host=1" in done.stderr


def wait_for_trials(url: str, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if len(trials(url)) >= count:
                return
        except Exception:  # the database is not created yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} trials after 120 s")


def wait_for_a_trial_on(worker_pid: int) -> int:
    """The pid of a trial the Dask worker ``worker_pid`` is running, once it runs one."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(worker_pid).children():
            with contextlib.suppress(psutil.Error):
                if "pipeline.worker.__main__" in " ".join(child.cmdline()):
                    return child.pid
        time.sleep(0.005)
    raise AssertionError("the worker ran no trial for 60 s")


def trial_processes() -> list[psutil.Process]:
    """Trial worker processes of this project still running anywhere on the machine."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "pipeline.worker.__main__" in cmdline and str(ROOT) in cmdline:
            found.append(process)
    return found


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(sqlite_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "dask"
    folder.mkdir()
    with LocalCluster(folder) as own:
        spec = write(tmp_path, repetitions=4, seconds=0.15)
        process = start_run(spec, sqlite_url, own.address)
        wait_for_trials(sqlite_url, 4, process)
        running = wait_for_a_trial_on(own.processes["beta"].pid)
        own.kill("beta")  # mid-trial
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
        found = trials(sqlite_url)
        assert_each_trial_once(found, cells=3, repetitions=4)
        assert set(found["status"]) == {"ok"}
        assert "alpha" in set(found["host"])
        notes = found["note"].dropna()
        assert len(notes) == 1  # the trial beta was running ran again, on alpha
        assert "ran again after its Dask worker died" in notes.iloc[0]
        assert found.loc[notes.index[0], "host"] == "alpha"
        assert not psutil.pid_exists(running) or psutil.Process(running).status() == "zombie"
        assert trial_processes() == []  # the killed worker's trial died with it


def test_the_orchestrator_killed_then_resumed_completes_without_duplicates(
    cluster: LocalCluster, sqlite_url: str, tmp_path: Path
) -> None:
    spec = write(tmp_path, repetitions=4, seconds=0.1)
    process = start_run(spec, sqlite_url, cluster.address)
    wait_for_trials(sqlite_url, 5, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    partial = len(trials(sqlite_url))
    assert 5 <= partial < 15
    done = run_pipeline(
        "run",
        str(spec),
        "--db",
        sqlite_url,
        "--cluster",
        cluster.address,
        "--resume",
        "--no-report",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    found = trials(sqlite_url)
    assert_each_trial_once(found, cells=3, repetitions=4)
    assert_no_overlap_per_host(found)


def test_a_run_whose_hosts_all_vanish_stops_and_resumes_later(
    sqlite_url: str, tmp_path: Path
) -> None:
    """With no host left for PIPELINE_CLUSTER_GRACE_S the run stops (interrupted, exit 2,
    saying so) instead of hanging; with a host back, --resume completes it."""
    folder = tmp_path / "dask"
    folder.mkdir()
    spec = write(tmp_path, repetitions=4, seconds=0.1)
    with LocalCluster(folder, ("alpha",)) as own:
        process = start_run(spec, sqlite_url, own.address, PIPELINE_CLUSTER_GRACE_S="3")
        wait_for_trials(sqlite_url, 3, process)
        own.kill("alpha")
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, stderr
        assert "no host of the cluster" in stderr
        assert "--resume" in stderr
        status = readonly.query(sqlite_url, "SELECT status FROM run")["status"].tolist()
        assert status == ["interrupted"]
        own.add("gamma")
        own.wait_for(1)
        done = run_pipeline(
            "run",
            str(spec),
            "--db",
            sqlite_url,
            "--cluster",
            own.address,
            "--resume",
            "-q",
            "--no-report",
        )
    assert done.returncode == 0, done.stderr
    found = trials(sqlite_url)
    assert_each_trial_once(found, cells=3, repetitions=4)
    assert "gamma" in set(found["host"])
    assert readonly.query(sqlite_url, "SELECT status FROM run")["status"].tolist() == ["finished"]
