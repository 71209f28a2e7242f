"""The subinterpreters model: its start-up barrier starts every worker, fails at once when
one cannot start and times out with too few; and a real run under the free-threaded build."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeline import app
from pipeline.storage import readonly
from pipeline.worker import subinterpreters

from .test_interpreters import free_threaded_spec


def test_the_start_up_barrier_starts_every_worker() -> None:
    """Each worker is held until all have arrived, so each takes one arrival: the pool has
    all its threads before start-up ends (shown here with threads, which it also holds)."""
    import concurrent.futures as cf

    fds: list[int] = []
    with cf.ThreadPoolExecutor(3) as pool:
        subinterpreters.warm_subinterpreters(pool, 3, 10.0, fds)
        assert len(pool._threads) == 3
    for fd in fds:
        os.close(fd)


def test_a_worker_that_cannot_start_fails_the_barrier_at_once() -> None:
    import concurrent.futures as cf

    def broken() -> None:
        raise OSError("no interpreter for you")

    fds: list[int] = []
    started_s = time.monotonic()
    with (
        pytest.raises(cf.BrokenExecutor),
        cf.ThreadPoolExecutor(2, initializer=broken) as pool,
    ):
        subinterpreters.warm_subinterpreters(pool, 2, 30.0, fds)
    assert time.monotonic() - started_s < 5  # not the 30 s timeout
    for fd in fds:
        os.close(fd)


def test_too_few_workers_time_the_barrier_out_and_are_released() -> None:
    import concurrent.futures as cf

    fds: list[int] = []
    with (
        pytest.raises(TimeoutError, match=r"only 1 of 2 workers started within 0\.2 s"),
        cf.ThreadPoolExecutor(1) as pool,
    ):
        subinterpreters.warm_subinterpreters(pool, 2, 0.2, fds)
    # leaving the with block joined the pool's thread: the waiting worker was let go
    for fd in fds:
        os.close(fd)


@pytest.mark.processes
def test_subinterpreters_run_under_the_free_threaded_build(tmp_path: Path) -> None:
    """Where InterpreterPoolExecutor is there (the backport on 3.13, which make python-ft
    installs into its builds), subinterpreters cells run; the others are skipped."""
    path = free_threaded_spec(tmp_path, "[sequential, subinterpreters]")
    plan = app.plan(path)
    if plan.probes["ft-off"].unsupported("subinterpreters"):
        if os.environ.get("PIPELINE_REQUIRE_PYTHON_FT") == "1":
            pytest.fail(plan.probes["ft-off"].unsupported("subinterpreters") or "")
        pytest.skip("this free-threaded interpreter has no InterpreterPoolExecutor")
    url = f"sqlite:///{tmp_path / 'results.db'}"
    app.run(plan, url, reports_dir=None)
    trials = readonly.query(
        url,
        "SELECT interpreter, model, status, items_done, startup_s FROM trial_results "
        "WHERE model = 'subinterpreters'",
    )
    by = trials.groupby("interpreter")["status"].agg(lambda values: set(values)).to_dict()
    assert by == {"current": {"skipped"}, "ft-off": {"ok"}, "ft-on": {"ok"}}
    ran = trials[trials["status"] == "ok"]
    assert set(ran["items_done"]) == {2}
    assert (ran["startup_s"] > 0).all()
