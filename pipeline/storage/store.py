"""The results database's reads and writes: the one place that speaks SQL to it.

SQLite by default (WAL, busy timeout, foreign keys on); any SQLAlchemy URL works.
Each trial is committed on its own as soon as it is added, so a crash loses nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import insert, text, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from ..cells import OPTIONAL_KEYS, with_optional_keys
from ..errors import DatabaseError, UnknownRun
from ..status import RunStatus
from .engine import IMMEDIATE, create_schema, make_engine
from .schema import (
    FACT_TABLE,
    RUN_TABLE,
    TRIAL_TABLE,
    CellRow,
    CellStats,
    EnvironmentRow,
    Run,
    RunHost,
    RunInterpreter,
    Trial,
    now,
)


class Store:
    """The one place that reads and writes results."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        """``read_only``: the database is only read (SQLite opened read-only, PostgreSQL in
        read-only transactions) and its schema left as it is, so it must be up to date."""
        self.url = url
        self._trial_insert: tuple[str, list[tuple[str, Any]]] | None = None
        self.engine = make_engine(url, read_only=read_only)
        if not read_only:
            create_schema(self.engine, url)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session that commits on success. ``write``: it writes, maybe after reading,
        so on SQLite its transaction takes the write lock first (BEGIN IMMEDIATE: waits
        for other writers up to the busy timeout, instead of failing when its write
        comes)."""
        engine = self.engine.execution_options(**{IMMEDIATE: True}) if write else self.engine
        with self._failing_clearly(), Session(engine, expire_on_commit=False) as session:
            yield session
            session.commit()

    @contextmanager
    def _failing_clearly(self) -> Iterator[None]:
        """A database that cannot be written (full disk, file size limit, read-only file,
        a lock held past the busy timeout) as one DatabaseError naming it."""
        try:
            yield
        except (OperationalError, sqlite3.OperationalError) as error:
            cause = getattr(error, "orig", None) or error
            raise DatabaseError(f"cannot write to {self.url}: {cause}") from None

    # -- writing ---------------------------------------------------------------------------
    def create_run(
        self,
        run: Run,
        environment: EnvironmentRow,
        cells: list[CellRow],
        interpreters: Sequence[RunInterpreter] = (),
        hosts: Sequence[RunHost] = (),
    ) -> Run:
        """Insert the run, its environment, its interpreters, its cluster hosts and its cells;
        ids are filled in on return."""
        with self.session(write=True) as session:
            session.add(run)
            session.flush()
            assert run.id is not None
            environment.run_id = run.id
            session.add(environment)
            for row in [*cells, *interpreters, *hosts]:
                row.run_id = run.id
                session.add(row)
        return run

    def add_trial(self, trial: Trial, facts: dict[str, float | None] | None = None) -> None:
        """Store one finished trial (and its task facts), beat the run's heartbeat, and
        commit at once."""
        self.add_trials([(trial, facts)])

    @property
    def embedded(self) -> bool:
        """Whether the database runs in this process (SQLite), not on a server."""
        return self.engine.dialect.name == "sqlite"

    def add_trials(self, batch: Sequence[tuple[Trial, dict[str, float | None] | None]]) -> None:
        """Store trials that finished together (each with its task facts) in one
        transaction, beat their runs' heartbeat, and commit at once: all of them or, on an
        error, none."""
        if not batch:
            return
        with self._failing_clearly():
            if self.engine.dialect.name == "sqlite" and all(t.id is None for t, _ in batch):
                self._add_trials_sqlite(batch)
            else:
                self._add_trials_core(batch)

    def _add_trials_core(
        self, batch: Sequence[tuple[Trial, dict[str, float | None] | None]]
    ) -> None:
        # SQLAlchemy Core, not the ORM session: a few times faster, and one transaction
        with self.engine.begin() as connection:
            for trial, facts in batch:
                values = trial.model_dump(exclude={"id"} if trial.id is None else set())
                inserted = connection.execute(insert(TRIAL_TABLE), values)
                key = inserted.inserted_primary_key
                assert key is not None
                trial.id = int(key[0])
                if facts:
                    connection.execute(
                        insert(FACT_TABLE),
                        [
                            {"trial_id": trial.id, "name": name, "value": value}
                            for name, value in facts.items()
                        ],
                    )
            for run_id in {trial.run_id for trial, _ in batch}:
                connection.execute(
                    update(RUN_TABLE).where(RUN_TABLE.c.id == run_id).values(heartbeat_at=now())
                )

    def _add_trials_sqlite(
        self, batch: Sequence[tuple[Trial, dict[str, float | None] | None]]
    ) -> None:
        """add_trials on SQLite through the DB-API connection: one transaction of plain
        prepared statements, values converted by SQLAlchemy's own column types."""
        if self._trial_insert is None:
            columns = [column for column in TRIAL_TABLE.columns if column.name != "id"]
            names = ", ".join(column.name for column in columns)
            marks = ", ".join("?" for _ in columns)
            self._trial_insert = (
                f"INSERT INTO trial ({names}) VALUES ({marks})",
                [
                    (column.name, column.type.bind_processor(self.engine.dialect))
                    for column in columns
                ],
            )
        sql, processors = self._trial_insert
        stamp = RUN_TABLE.c.heartbeat_at.type.bind_processor(self.engine.dialect)
        beat = stamp(now()) if stamp is not None else now()
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")  # pysqlite begins nothing itself (engine.py)
            for trial, facts in batch:
                values = trial.model_dump()
                cursor.execute(
                    sql,
                    [
                        process(values[name]) if process is not None else values[name]
                        for name, process in processors
                    ],
                )
                trial.id = int(cursor.lastrowid or 0)
                if facts:
                    cursor.executemany(
                        "INSERT INTO trial_fact (trial_id, name, value) VALUES (?, ?, ?)",
                        [(trial.id, name, value) for name, value in facts.items()],
                    )
            for run_id in {trial.run_id for trial, _ in batch}:
                cursor.execute("UPDATE run SET heartbeat_at = ? WHERE id = ?", (beat, run_id))
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()  # back to the pool

    def claim_run(self, run_id: int, host: str, pid: int) -> None:
        """Mark a run as running again under this orchestrator (for a resume)."""
        with self.session(write=True) as session:
            run = session.get(Run, run_id)
            assert run is not None
            run.status, run.finished_at = RunStatus.RUNNING, None
            run.orchestrator_host, run.orchestrator_pid, run.heartbeat_at = host, pid, now()

    def done_trials(self, run_id: int) -> pd.DataFrame:
        """Every stored trial of a run (warm-ups too): cell position, repetition, warm-up,
        sequence, status, wall time and error: what a resume must not run again."""
        return self._frame(
            "SELECT c.position, t.repetition, t.warmup, t.sequence, t.status, t.wall_s, "
            "t.error "
            "FROM trial t JOIN cell c ON c.id = t.cell_id WHERE t.run_id = :run_id "
            "ORDER BY t.sequence",
            run_id,
        )

    def cell_hosts(self, run_id: int) -> list[str]:
        """The host of each of a run's cells ("" for cells of no one host)."""
        with self.session() as session:
            return list(session.exec(select(CellRow.host).where(CellRow.run_id == run_id)))

    def cell_ids(self, run_id: int) -> dict[int, int]:
        """Cell id by position, for one run."""
        frame = self._frame("SELECT id, position FROM cell WHERE run_id = :run_id", run_id)
        return {int(p): int(i) for i, p in zip(frame["id"], frame["position"], strict=True)}

    def finish_run(
        self, run_id: int, status: str, closing: dict[str, float | None] | None = None
    ) -> None:
        """Mark a run finished, interrupted or failed; store the environment's closing
        figures (``load_avg_end``, ``cpu_percent_end``)."""
        with self.session(write=True) as session:
            run = session.get(Run, run_id)
            environment = session.get(EnvironmentRow, run_id)
            assert run is not None
            run.status = status
            run.finished_at = now()
            if environment is not None:
                for key, value in (closing or {}).items():
                    setattr(environment, key, value)

    def set_stop_reasons(self, reasons: dict[int, str]) -> None:
        """Record why each cell (by id) got no more trials."""
        with self.session(write=True) as session:
            for cell_id, reason in reasons.items():
                cell = session.get(CellRow, cell_id)
                if cell is not None:
                    cell.stop_reason = reason

    def save_cell_stats(self, run_id: int, summary: pd.DataFrame) -> None:
        """Replace the run's cell statistics with ``summary`` (one row per cell_id)."""
        columns = set(CellStats.model_fields)
        rows = summary.astype(object).where(summary.notna(), None).to_dict("records")
        with self.session(write=True) as session:
            for old in session.exec(select(CellStats).where(CellStats.run_id == run_id)):
                session.delete(old)
            session.flush()
            for row in rows:
                values = {key: value for key, value in row.items() if key in columns}
                session.add(CellStats(run_id=run_id, **values))

    # -- reading ---------------------------------------------------------------------------
    def resolve_run(self, run: str | int | None) -> Run:
        """A run by id, or the newest for ``None``/``"latest"``."""
        with self.session() as session:
            if run in (None, "latest"):
                found = session.exec(select(Run).order_by(col(Run.id).desc())).first()
                if found is None:
                    raise UnknownRun(
                        "no runs in the database yet: start one with 'pipeline run SPEC'"
                    )
                return found
            try:
                run_id = int(run)
            except ValueError:
                raise UnknownRun(f"run {run!r} is not a run id (a number, or 'latest')") from None
            found = session.get(Run, run_id)
            if found is None:
                raise UnknownRun(
                    f"no run {run_id} in {self.url} (see 'pipeline query "
                    '"SELECT id, name FROM run"\')'
                )
            return found

    def runs(self) -> list[Run]:
        """All runs, newest first."""
        with self.session() as session:
            return list(session.exec(select(Run).order_by(col(Run.id).desc())))

    def environment(self, run_id: int) -> EnvironmentRow | None:
        """The environment row of a run."""
        with self.session() as session:
            return session.get(EnvironmentRow, run_id)

    def trials_frame(self, run_id: int, *, after_sequence: int | None = None) -> pd.DataFrame:
        """The run's measured trials (the ``trial_results`` view) as a DataFrame, in order
        of sequence; with ``after_sequence``, only those that come after it."""
        after_sequence = -1 if after_sequence is None else after_sequence  # sequences from 0
        return self._frame(
            "SELECT * FROM trial_results WHERE run_id = :run_id AND sequence > :after "
            "ORDER BY sequence",
            run_id,
            after=after_sequence,
        )

    def summary_frame(self, run_id: int) -> pd.DataFrame:
        """The run's ``cell_summary`` rows as a DataFrame."""
        return self._frame(
            "SELECT * FROM cell_summary WHERE run_id = :run_id ORDER BY cell_id", run_id
        )

    def facts_frame(self, run_id: int) -> pd.DataFrame:
        """The run's task facts of measured trials (the ``trial_facts`` view)."""
        return self._frame(
            "SELECT * FROM trial_facts WHERE run_id = :run_id ORDER BY trial_id, name", run_id
        )

    def trial_details(self, run_id: int) -> dict[int, dict[str, Any]]:
        """Each measured trial's full worker result (``trial.detail_json``) by trial id."""
        frame = self._frame(
            "SELECT id, detail_json FROM trial WHERE run_id = :run_id AND NOT warmup", run_id
        )
        return {
            int(trial_id): json.loads(text or "{}")
            for trial_id, text in zip(frame["id"], frame["detail_json"], strict=True)
        }

    def trial_counts(self, run_id: int) -> dict[str, int]:
        """How many measured trials of the run ended in each status."""
        frame = self._frame(
            "SELECT status, COUNT(*) AS n FROM trial_results "
            "WHERE run_id = :run_id GROUP BY status",
            run_id,
        )
        return {str(k): int(v) for k, v in zip(frame["status"], frame["n"], strict=True)}

    def data_version(self) -> tuple[int, ...]:
        """What changes whenever the data does (a trial stored, a run started or ended, its
        statistics saved): for caching pages built from the database."""
        frame = self._frame(
            "SELECT (SELECT COUNT(*) FROM trial) AS trials, "
            "(SELECT COALESCE(MAX(id), 0) FROM trial) AS last_trial, "
            "(SELECT COUNT(*) FROM run) AS runs, "
            "(SELECT COUNT(*) FROM run WHERE status <> 'running') AS ended, "
            "(SELECT COUNT(*) FROM cell_stats) AS statistics",
            0,
        )
        return tuple(int(value) for value in frame.iloc[0])

    def interpreters_frame(self, run_id: int) -> pd.DataFrame:
        """The run's probed interpreters (empty for runs stored before they were kept)."""
        return self._frame("SELECT * FROM run_interpreter WHERE run_id = :run_id", run_id)

    def hosts_frame(self, run_id: int) -> pd.DataFrame:
        """The cluster hosts of a run (none for a run on this machine only)."""
        return self._frame("SELECT * FROM run_host WHERE run_id = :run_id ORDER BY name", run_id)

    def interpreters(self, run_id: int) -> list[str]:
        """The distinct interpreters of a run's cells."""
        frame = self._frame("SELECT DISTINCT interpreter FROM cell WHERE run_id = :run_id", run_id)
        return [str(value) for value in frame["interpreter"]]

    def _frame(self, sql: str, run_id: int, **params: Any) -> pd.DataFrame:
        """Rows as a DataFrame; a NULL variant (older rows) comes back as '' like any other
        cell without a swept parameter."""
        with self.engine.connect() as connection:
            frame = pd.read_sql(text(sql), connection, params={"run_id": run_id, **params})
        return with_optional_keys(frame) if any(key in frame for key in OPTIONAL_KEYS) else frame
