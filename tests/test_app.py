"""The run loop with an injected executor: exact, fast, no processes."""

from __future__ import annotations

import sys

import pytest
from sqlmodel import select

from pipeline import app
from pipeline.execution import records
from pipeline.execution.trial import Measurement, TrialRequest
from pipeline.storage import readonly, schema, store

from .helpers import FAKE_SPEC, fake_execute


def planned(write_spec) -> app.Plan:
    """The fake spec, planned."""
    return app.plan(write_spec(FAKE_SPEC))


def test_run_with_fake_executor_stores_exact_numbers(write_spec, db_url) -> None:
    outcome = app.run(planned(write_spec), db_url, execute=fake_execute, reports_dir=None)
    assert (outcome.run_id, outcome.status, outcome.counts) == (1, "finished", {"ok": 6})
    results = store.Store(db_url)
    summary = results.summary_frame(1).set_index("model")
    assert summary.loc["threads", "speedup"] == pytest.approx(4.0)
    assert summary.loc["threads", "efficiency"] == pytest.approx(1.0)
    assert summary.loc["sequential", "median_wall_s"] == pytest.approx(0.4)
    trials = results.trials_frame(1)
    assert sorted(trials["latency_p50_s"].unique()) == pytest.approx([0.1, 0.4])
    assert results.resolve_run(1).trial_count == 8


def test_interrupt_keeps_finished_trials_and_marks_the_run(write_spec, db_url) -> None:
    calls = []

    def interrupted_on_fourth(request: TrialRequest) -> Measurement:
        calls.append(request)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return fake_execute(request)

    with pytest.raises(app.Interrupted) as stopped:
        app.run(planned(write_spec), db_url, execute=interrupted_on_fourth, reports_dir=None)
    assert stopped.value.run_id == 1
    results = store.Store(db_url)
    assert results.resolve_run(1).status == "interrupted"
    with results.session() as session:
        assert len(list(session.exec(select(schema.Trial)))) == 3


def test_failed_trials_are_data(write_spec, db_url) -> None:
    def crash_threads(request: TrialRequest) -> Measurement:
        if request.model == "threads":
            return Measurement(status="crashed", process_s=0.2, error="worker died (exit code 7)")
        return fake_execute(request)

    outcome = app.run(planned(write_spec), db_url, execute=crash_threads, reports_dir=None)
    assert outcome.counts == {"ok": 3, "crashed": 3}
    summary = store.Store(db_url).summary_frame(1).set_index("model")
    assert summary.loc["threads", "n_ok"] == 0


def test_orchestrator_adds_the_facts_only_it_can_know() -> None:
    crashed = Measurement(
        status="crashed", result={"items_done": 2, "partial": True}, process_s=0.5
    )
    assert records.trial_facts("fault", 2, crashed) == {
        "others_finished": 2,
        "pool_broken": None,
        "trial_process_survived": 0.0,
    }
    held = Measurement(
        status="ok", result={"facts": {}}, process_s=0.5, peak_rss_bytes=400, peak_uss_bytes=100
    )
    assert records.trial_facts("memory", 4, held) == {
        "rss_per_worker_bytes": 100.0,
        "uss_per_worker_bytes": 25.0,
        "pss_per_worker_bytes": None,
    }
    reported = Measurement(
        status="ok", result={"facts": {"bytes_moved": 8.0}}, process_s=0.5, peak_rss_bytes=400
    )
    assert records.trial_facts("transfer", 2, reported) == {"bytes_moved": 8.0}


ADAPTIVE = FAKE_SPEC.replace("repetitions: 3", "repetitions: {min: 3, max: 9, target_ci: 0.05}")


def test_adaptive_repetitions_go_where_the_noise_is(write_spec, db_url) -> None:
    noise = iter([1.0, 1.4, 0.7, 1.2, 0.8, 1.5, 0.6, 1.3, 0.9, 1.1] * 3)

    def noisy_threads(request: TrialRequest) -> Measurement:
        measured = fake_execute(request)
        if request.model == "threads":  # warm-up included: the iterator runs past 9
            measured.result["work_s"] = 0.1 * next(noise)
        return measured

    plan = app.plan(write_spec(ADAPTIVE))
    assert len(plan.trials) == 2 + 2 * 3  # warm-ups and the minimum are planned up front
    app.run(plan, db_url, execute=noisy_threads, reports_dir=None)
    cells = readonly.query(
        db_url,
        "SELECT model, stop_reason, (SELECT count(*) FROM trial_results t "
        "WHERE t.cell_id = c.cell_id) AS n FROM cell_summary c ORDER BY model",
    )
    assert cells.values.tolist() == [
        # constant, but a 95% interval of a median needs six trials, however they agree
        ["sequential", "target met", 6],
        ["threads", "max reached", 9],  # ±30% noise never gets to ±5%
    ]
    sequences = readonly.query(db_url, "SELECT sequence FROM trial ORDER BY id")["sequence"]
    assert sequences.tolist() == list(range(2 + 3 * 2 + 3 + 6))
    run = store.Store(db_url).resolve_run(1)
    assert (run.repetitions, run.repetitions_max, run.target_ci) == (3, 9, 0.05)


def test_a_fixed_count_records_its_stop_reason(write_spec, db_url) -> None:
    app.run(planned(write_spec), db_url, execute=fake_execute, reports_dir=None)
    reasons = readonly.query(db_url, "SELECT DISTINCT stop_reason FROM cell")["stop_reason"]
    assert reasons.tolist() == ["fixed count"]


def test_hosts_that_differ_are_named_and_cluster_needs_distributed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.analysis.machine import host_differences
    from pipeline.execution import cluster

    same = {"cpu_model": "Xeon", "usable_cores": 2.0, "interpreters": "current 3.11.7"}
    assert host_differences([{"name": "a", **same}, {"name": "b", **same}]) == []
    found = host_differences([{"name": "a", **same}, {"name": "b", **same, "usable_cores": 64}])
    assert found == ["the hosts differ in usable cores (a: 2.0, b: 64)"]
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(cluster.ClusterError, match=r"pip install 'pipeline\[cluster\]'"):
        cluster.connect("tcp://127.0.0.1:1", [])
