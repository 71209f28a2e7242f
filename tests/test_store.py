"""Store round trip on an in-memory engine: tables, views, statistics, read-only queries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select

from pipeline.errors import DatabaseError, QueryError, UnknownRun
from pipeline.storage import engine, readonly, schema, store


def make_run(results: store.Store) -> tuple[int, list[int]]:
    run = results.create_run(
        schema.Run(name="r", spec_text="name: r", spec_hash="h"),
        schema.EnvironmentRow(run_id=0, hostname="host", cpu_physical=2),
        [
            schema.CellRow(
                run_id=0,
                position=i,
                task="io_sleep",
                model=model,
                workers=workers,
                payload_bytes=1024,
                interpreter="python3",
            )
            for i, (model, workers) in enumerate([("sequential", 1), ("threads", 4)])
        ],
    )
    assert run.id is not None
    with results.session() as session:
        ids = [
            cell.id
            for cell in session.exec(select(schema.CellRow).where(schema.CellRow.run_id == run.id))
        ]
    return run.id, ids


def add(results, run_id, cell_id, sequence, wall_s, *, warmup=False, status="ok"):
    results.add_trial(
        schema.Trial(
            run_id=run_id,
            cell_id=cell_id,
            sequence=sequence,
            repetition=sequence,
            warmup=warmup,
            status=status,
            wall_s=wall_s,
            startup_s=0.01,
            shutdown_s=0.0,
            cpu_user_s=0.1,
            cpu_sys_s=0.0,
            peak_rss_bytes=10_000_000,
            items_done=8,
        )
    )


@pytest.fixture
def results() -> store.Store:
    return store.Store("sqlite://")


def test_trial_results_view_excludes_warmups(results) -> None:
    run_id, (sequential, threads) = make_run(results)
    add(results, run_id, sequential, 0, 9.9, warmup=True)
    add(results, run_id, sequential, 1, 0.4)
    add(results, run_id, threads, 2, 0.1)
    frame = results.trials_frame(run_id)
    assert list(frame["wall_s"]) == [0.4, 0.1]
    assert list(frame["model"]) == ["sequential", "threads"]
    for column in (
        "run_id",
        "task",
        "model",
        "workers",
        "payload_bytes",
        "interpreter",
        "repetition",
        "status",
        "wall_s",
        "startup_s",
        "cpu_user_s",
        "cpu_sys_s",
        "peak_rss_bytes",
        "items_done",
    ):
        assert column in frame.columns


def test_cell_stats_round_trip_through_the_view(results) -> None:
    run_id, (sequential, threads) = make_run(results)
    summary = pd.DataFrame(
        [
            {"cell_id": sequential, "n": 5, "n_ok": 5, "median_wall_s": 0.4, "speedup": 1.0},
            {
                "cell_id": threads,
                "n": 5,
                "n_ok": 4,
                "median_wall_s": 0.1,
                "speedup": 4.0,
                "speedup_ci_low": float("nan"),
            },
        ]
    )
    results.save_cell_stats(run_id, summary)
    results.save_cell_stats(run_id, summary)  # replacing, not duplicating
    frame = results.summary_frame(run_id)
    assert list(frame["speedup"]) == [1.0, 4.0]
    assert frame["speedup_ci_low"].isna().all()
    assert list(frame["model"]) == ["sequential", "threads"]


def test_resolve_run(results) -> None:
    with pytest.raises(UnknownRun, match="no runs in the database yet"):
        results.resolve_run("latest")
    run_id, _ = make_run(results)
    assert results.resolve_run("latest").id == run_id
    assert results.resolve_run(str(run_id)).id == run_id
    with pytest.raises(UnknownRun, match="no run 99 in"):
        results.resolve_run("99")
    with pytest.raises(UnknownRun, match="is not a run id"):
        results.resolve_run("abc")


def test_finish_run_records_status(results) -> None:
    run_id, _ = make_run(results)
    results.finish_run(run_id, "interrupted", {"load_avg_end": 0.5})
    run = results.resolve_run(run_id)
    assert run.status == "interrupted"
    assert run.finished_at is not None
    assert results.environment(run_id).load_avg_end == 0.5


def test_sqlite_file_uses_wal(tmp_path: Path) -> None:
    results = store.Store(f"sqlite:///{tmp_path / 'sub' / 'r.db'}")
    with results.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    results = store.Store(url)
    run_id, (sequential, _) = make_run(results)
    add(results, run_id, sequential, 0, 0.4)
    return url


def test_query_reads(file_url: str) -> None:
    frame = readonly.query(
        file_url, "SELECT model, wall_s FROM trial_results WHERE wall_s > :w", {"w": "0.1"}
    )
    assert frame.to_dict("records") == [{"model": "sequential", "wall_s": 0.4}]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM trial",
        "INSERT INTO meta (key, value) VALUES ('a', 'b')",
        "UPDATE run SET name = 'x'",
        "DROP VIEW trial_results",
        "CREATE TABLE t (x)",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA journal_mode = DELETE",
    ],
)
def test_query_refuses_writes(file_url: str, sql: str) -> None:
    with pytest.raises(QueryError, match=r"^refused: the statement would write"):
        readonly.query(file_url, sql)
    assert len(readonly.query(file_url, "SELECT * FROM trial")) == 1


def test_query_bad_sql_and_missing_file(file_url: str, tmp_path: Path) -> None:
    with pytest.raises(QueryError, match=r"^bad SQL: no such table: nope"):
        readonly.query(file_url, "SELECT * FROM nope")
    with pytest.raises(DatabaseError, match="database file not found"):
        readonly.query(f"sqlite:///{tmp_path / 'missing.db'}", "SELECT 1")


def test_task_facts_are_stored_with_the_trial_and_shown_by_their_view(results) -> None:
    run_id, (cell_id, _) = make_run(results)
    trial = schema.Trial(run_id=run_id, cell_id=cell_id, sequence=0, repetition=0, status="ok")
    results.add_trial(trial, {"lost_updates": 3.0, "pool_broken": None})
    results.add_trial(
        schema.Trial(
            run_id=run_id, cell_id=cell_id, sequence=1, repetition=0, status="ok", warmup=True
        ),
        {"lost_updates": 9.0},
    )
    frame = results.facts_frame(run_id)
    assert frame["name"].tolist() == ["lost_updates", "pool_broken"]
    assert frame["value"].iloc[0] == 3.0
    assert pd.isna(frame["value"].iloc[1])  # warm-ups are left out, like in trial_results
    assert set(frame["trial_id"]) == {trial.id}
    assert frame["task"].tolist() == ["io_sleep", "io_sleep"]


def test_a_version_1_database_is_migrated_when_opened(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    run_id, _ = make_run(store.Store(url))
    with sqlite3.connect(path) as connection:  # make it look like a version-1 database
        for view in schema.VIEWS:
            connection.execute(f"DROP VIEW {view}")
        connection.execute("ALTER TABLE trial DROP COLUMN peak_uss_bytes")
        connection.execute("DROP INDEX ix_cell_variant")  # version 1 had neither
        connection.execute("ALTER TABLE cell DROP COLUMN variant")
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    reopened = store.Store(url)
    with sqlite3.connect(path) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(cell)")}
        version = connection.execute("SELECT value FROM meta").fetchall()
    assert "variant" in columns
    with sqlite3.connect(path) as connection:
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(cell)")}
    assert {"ix_cell_variant", "ix_cell_workers", "ix_cell_payload_bytes"} <= indexes
    assert version == [(str(schema.SCHEMA_VERSION),)]
    assert reopened.resolve_run(run_id).name == "r"
    assert readonly.query(url, "SELECT variant FROM cell")["variant"].tolist() == ["", ""]
    assert engine.add_missing_columns(reopened.engine) == []
