"""The results database: SQLModel tables, the public SQL views, and every SQL statement.

SQLite by default (WAL, busy timeout, foreign keys on); any SQLAlchemy URL works.
Each trial is committed on its own as soon as it is added, so a crash loses nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import BigInteger, Engine, Table, event, insert, inspect, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from ..errors import DatabaseError, QueryError, UnknownRun

DEFAULT_DB_PATH = Path("data") / "results.db"
SCHEMA_VERSION = 3  # 3: run_interpreter
SCHEMA_LOCK_KEY = 0x70697065  # PostgreSQL advisory lock taken while creating the schema


def default_url() -> str:
    """``$PIPELINE_DB`` if set, else ``data/results.db`` under the working directory."""
    return os.environ.get("PIPELINE_DB") or f"sqlite:///{DEFAULT_DB_PATH}"


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class Run(SQLModel, table=True):
    """One execution of a spec."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    description: str = ""
    status: str = "running"  # running | finished | interrupted | failed
    spec_path: str = ""
    spec_text: str = ""
    spec_hash: str = ""
    seed: int = 0
    repetitions: int = 0  # measured trials per cell (the minimum when adaptive)
    repetitions_max: int | None = None  # adaptive: the most trials a cell may get
    target_ci: float | None = None  # adaptive: relative half-width of the median's 95% CI
    budget_s: float | None = None  # adaptive: seconds the extra trials may take
    warmup: int = 0
    items: int = 0
    timeout_s: float = 0.0
    trial_order: str = ""
    trial_count: int = 0
    sample_interval_s: float = 0.0
    pipeline_version: str = ""
    started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    # who runs it, and when it last finished a trial: a "running" run whose orchestrator
    # is gone (dead pid on this host, or no heartbeat for longer than a trial can take) is
    # resumable
    orchestrator_host: str = ""
    orchestrator_pid: int | None = None
    heartbeat_at: datetime | None = None


class Environment(SQLModel, table=True):
    """The machine and software a run was measured on (one row per run)."""

    run_id: int = Field(primary_key=True, foreign_key="run.id")
    hostname: str = ""
    os: str = ""
    machine: str = ""
    cpu_model: str = ""
    cpu_physical: int | None = None
    cpu_logical: int | None = None
    memory_total_bytes: int | None = Field(default=None, sa_type=BigInteger)
    python_version: str = ""
    python_implementation: str = ""
    python_build: str = ""
    python_executable: str = ""
    packages_json: str = "{}"
    git_commit: str | None = None
    git_dirty: bool | None = None
    load_avg_start: float | None = None
    load_avg_end: float | None = None
    boot_time: datetime | None = None
    kernel: str = ""
    cpu_freq_mhz: float | None = None  # current frequency at the start, where readable
    cpu_freq_max_mhz: float | None = None
    cpu_governor: str | None = None  # cpufreq scaling governor(s), e.g. "performance"
    cpu_turbo: str | None = None  # "enabled" / "disabled" where the driver says
    cpu_affinity: str | None = None  # CPUs the orchestrator may run on, e.g. "0-1"
    isolated_cpus: str | None = None  # kernel isolcpus, where set
    aslr: str | None = None  # /proc/sys/kernel/randomize_va_space, e.g. "2 (full)"
    memory_available_bytes: int | None = Field(default=None, sa_type=BigInteger)
    cpu_percent_start: float | None = None  # machine-wide CPU use just before the run
    cpu_percent_end: float | None = None
    details_json: str = "{}"  # anything else captured (see environment.py)


class Cell(SQLModel, table=True):
    """One point of a run's matrix."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    position: int
    task: str = Field(index=True)
    model: str = Field(index=True)
    workers: int = Field(index=True)
    payload_bytes: int = Field(index=True, sa_type=BigInteger)
    interpreter: str = Field(index=True)
    variant: str = Field(default="", index=True)  # swept task parameters ("" when none)
    params_json: str = "{}"
    # why the cell got no more trials: fixed count, target met, max reached, budget spent,
    # no ok trials (adaptive runs), or interrupted
    stop_reason: str = ""


class Trial(SQLModel, table=True):
    """One execution of a cell in a fresh worker process (warm-ups included, flagged)."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    cell_id: int = Field(foreign_key="cell.id", index=True)
    sequence: int
    repetition: int
    warmup: bool = False
    status: str  # ok | error | timeout | crashed | skipped
    wall_s: float | None = None
    startup_s: float | None = None
    shutdown_s: float | None = None
    process_s: float | None = None
    cpu_user_s: float | None = None
    cpu_sys_s: float | None = None
    peak_rss_bytes: int | None = Field(default=None, sa_type=BigInteger)
    items_done: int = 0
    items_failed: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    throughput_items_s: float | None = None  # items done / work_s
    cpu_utilisation: float | None = None  # CPU s / (start-up + work + shutdown) s
    # summed over the process tree (USS and PSS sampled less often)
    peak_uss_bytes: int | None = Field(default=None, sa_type=BigInteger)
    peak_pss_bytes: int | None = Field(default=None, sa_type=BigInteger)
    ctx_switches_voluntary: int | None = None  # the tree's, from getrusage
    ctx_switches_involuntary: int | None = None
    start_method: str | None = None
    python_version: str | None = None
    python_implementation: str | None = None
    gil_enabled: bool | None = None
    free_threaded_build: bool | None = None
    switch_interval_s: float | None = None
    error: str | None = None
    started_at: datetime = Field(default_factory=now)
    detail_json: str = "{}"


class TrialFact(SQLModel, table=True):
    """A task-specific number one trial recorded (bytes moved, lost updates, pool broken...)."""

    __tablename__ = "trial_fact"

    trial_id: int = Field(primary_key=True, foreign_key="trial.id")
    name: str = Field(primary_key=True, index=True)
    value: float | None = None


class CellStats(SQLModel, table=True):
    """Per-cell statistics computed when a run ends (behind the ``cell_summary`` view)."""

    __tablename__ = "cell_stats"

    cell_id: int = Field(primary_key=True, foreign_key="cell.id")
    run_id: int = Field(foreign_key="run.id", index=True)
    n: int
    n_ok: int
    median_wall_s: float | None = None
    ci_low_wall_s: float | None = None
    ci_high_wall_s: float | None = None
    mean_wall_s: float | None = None
    std_wall_s: float | None = None
    cv_wall: float | None = None
    min_wall_s: float | None = None
    max_wall_s: float | None = None
    iqr_wall_s: float | None = None
    outliers: int | None = None  # trials outside Tukey's fences (1.5 IQR), counted not dropped
    median_startup_s: float | None = None
    median_shutdown_s: float | None = None
    median_cpu_s: float | None = None
    cpu_utilisation: float | None = None
    median_peak_rss_bytes: float | None = None
    median_peak_uss_bytes: float | None = None
    median_peak_pss_bytes: float | None = None
    speedup: float | None = None
    speedup_ci_low: float | None = None
    speedup_ci_high: float | None = None
    efficiency: float | None = None
    ideal_speedup: float | None = None
    karp_flatt: float | None = None  # serial fraction (1/S - 1/n) / (1 - 1/n), n > 1
    warnings: str = ""  # instability warnings, "; "-separated


class RunInterpreter(SQLModel, table=True):
    """An interpreter of a run's interpreter axis, as probed before the run started."""

    __tablename__ = "run_interpreter"

    run_id: int = Field(primary_key=True, foreign_key="run.id")
    label: str = Field(primary_key=True)  # what cell.interpreter says
    executable: str = ""
    env_json: str = "{}"  # variables the entry adds to its workers' environment
    implementation: str = ""
    version: str = ""
    free_threaded_build: bool | None = None  # sysconfig Py_GIL_DISABLED
    gil_enabled: bool | None = None  # at run time, under env
    start_methods: str = ""  # multiprocessing's, comma-separated
    unsupported_json: str = "{}"  # model -> why this interpreter cannot run it
    facts_json: str = "{}"  # everything the probe reported


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself, such as the schema version."""

    key: str = Field(primary_key=True)
    value: str


TRIAL_TABLE: Table = Trial.__table__  # type: ignore[attr-defined]
FACT_TABLE: Table = TrialFact.__table__  # type: ignore[attr-defined]
RUN_TABLE: Table = Run.__table__  # type: ignore[attr-defined]

_CELL_COLUMNS = "c.task, c.variant, c.model, c.workers, c.payload_bytes, c.interpreter"
VIEWS = {
    "trial_results": f"""
        SELECT t.run_id, t.cell_id, t.id AS trial_id, {_CELL_COLUMNS}, t.repetition,
               t.sequence, t.status, t.wall_s, t.startup_s, t.shutdown_s, t.process_s,
               t.cpu_user_s, t.cpu_sys_s, t.peak_rss_bytes, t.items_done, t.items_failed,
               t.latency_p50_s, t.latency_p95_s, t.latency_p99_s, t.throughput_items_s,
               t.cpu_utilisation, t.peak_uss_bytes, t.peak_pss_bytes,
               t.ctx_switches_voluntary, t.ctx_switches_involuntary, t.start_method,
               t.python_version, t.python_implementation, t.gil_enabled,
               t.free_threaded_build, t.switch_interval_s, t.error, t.started_at
        FROM trial t JOIN cell c ON c.id = t.cell_id
        WHERE NOT t.warmup""",
    "trial_facts": f"""
        SELECT t.run_id, t.cell_id, t.id AS trial_id, {_CELL_COLUMNS}, t.repetition,
               t.status, f.name, f.value
        FROM trial_fact f JOIN trial t ON t.id = f.trial_id JOIN cell c ON c.id = t.cell_id
        WHERE NOT t.warmup""",
    "cell_summary": f"""
        SELECT c.run_id, c.id AS cell_id, {_CELL_COLUMNS}, c.stop_reason, s.n, s.n_ok,
               s.median_wall_s, s.ci_low_wall_s, s.ci_high_wall_s, s.mean_wall_s,
               s.std_wall_s, s.cv_wall, s.min_wall_s, s.max_wall_s, s.iqr_wall_s,
               s.outliers, s.median_startup_s, s.median_shutdown_s, s.median_cpu_s,
               s.cpu_utilisation, s.median_peak_rss_bytes, s.median_peak_uss_bytes,
               s.median_peak_pss_bytes, s.speedup, s.speedup_ci_low, s.speedup_ci_high,
               s.efficiency, s.ideal_speedup, s.karp_flatt, s.warnings
        FROM cell c JOIN cell_stats s ON s.cell_id = c.id""",
}


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() != "sqlite":
        # no pool: a connection is closed as soon as it is released, so short-lived
        # commands and tests leave nothing open on the server
        return create_engine(url, poolclass=NullPool)
    if not parsed.database:
        return create_engine(url)  # in-memory SQLite: one connection, kept
    path = Path(parsed.database)
    if read_only:
        if not path.exists():
            raise DatabaseError(f"{path}: database file not found")
        engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas(read_only))
    return engine


def _sqlite_pragmas(read_only: bool) -> Any:
    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash of the process (not a power cut)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def add_missing_columns(engine: Engine) -> list[str]:
    """Migrate a database made by an older version: add the columns it lacks.

    Every schema change so far only added nullable or defaulted columns (and tables, which
    ``create_all`` makes), so an ALTER TABLE ... ADD COLUMN per missing column is the whole
    migration. Returns the ``table.column`` names added.
    """
    inspector = inspect(engine)
    added = []
    with engine.begin() as connection:
        for table in SQLModel.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                default = getattr(column.default, "arg", None)
                clause = ""
                if isinstance(default, bool):
                    clause = f" DEFAULT {str(default).upper()}"  # TRUE/FALSE: both dialects
                elif isinstance(default, int | float):
                    clause = f" DEFAULT {default}"
                elif isinstance(default, str):
                    clause = " DEFAULT '" + default.replace("'", "''") + "'"
                connection.execute(
                    text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}')
                )
                added.append(f"{table.name}.{column.name}")
    return added


class Store:
    """The one place that reads and writes results."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._trial_insert: tuple[str, list[tuple[str, Any]]] | None = None
        self.engine = make_engine(url)
        self._create_schema(url)

    def _create_schema(self, url: str) -> None:
        """Tables, added columns, indexes and views, by one process at a time: on
        PostgreSQL under an advisory lock; on SQLite, two processes opening a new database
        at once race ("table ... already exists") and the loser waits and checks again."""
        if self.engine.dialect.name != "postgresql":
            self._create_schema_retrying(url)
            return
        with self.engine.connect() as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                self._create_schema_retrying(url)
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})

    def _create_schema_retrying(self, url: str, attempts: int = 20) -> None:
        for attempt in range(attempts):
            try:
                SQLModel.metadata.create_all(self.engine)
                add_missing_columns(self.engine)
                for table in SQLModel.metadata.sorted_tables:  # indexes added since
                    for index in table.indexes:
                        index.create(self.engine, checkfirst=True)
                self._create_views()
                return
            except OperationalError as error:
                message = str(error.orig)
                # the other process created it first, or both read and then tried to write
                # (SQLite refuses one at once, whatever the busy timeout)
                racing = any(
                    sign in message
                    for sign in ("already exists", "duplicate column", "database is locked")
                )
                if not racing or attempt == attempts - 1:
                    raise DatabaseError(f"cannot open database {url}: {error.orig}") from None
                time.sleep(0.05 * (attempt + 1))

    def _create_views(self) -> None:
        sqlite = self.engine.dialect.name == "sqlite"
        with self.engine.begin() as connection:
            for name, body in VIEWS.items():
                # dropped first: CREATE OR REPLACE cannot reorder a view's columns
                cascade = "" if sqlite else " CASCADE"
                connection.execute(text(f"DROP VIEW IF EXISTS {name}{cascade}"))
                connection.execute(text(f"CREATE VIEW {name} AS {body}"))
            connection.execute(text("DELETE FROM meta WHERE key = 'schema_version'"))
            connection.execute(
                text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)"),
                {"v": str(SCHEMA_VERSION)},
            )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session
            session.commit()

    # -- writing ---------------------------------------------------------------------------
    def create_run(
        self,
        run: Run,
        environment: Environment,
        cells: list[Cell],
        interpreters: Sequence[RunInterpreter] = (),
    ) -> Run:
        """Insert the run, its environment, its interpreters and its cells; ids are filled in
        on return."""
        with self.session() as session:
            session.add(run)
            session.flush()
            assert run.id is not None
            environment.run_id = run.id
            session.add(environment)
            for row in [*cells, *interpreters]:
                row.run_id = run.id
                session.add(row)
        return run

    def add_trial(self, trial: Trial, facts: dict[str, float | None] | None = None) -> None:
        """Store one finished trial (and its task facts), beat the run's heartbeat, and
        commit at once."""
        if self.engine.dialect.name == "sqlite" and trial.id is None:
            self._add_trial_sqlite(trial, facts)
            return
        # SQLAlchemy Core, not the ORM session: a few times faster, and one transaction
        values = trial.model_dump(exclude={"id"} if trial.id is None else set())
        with self.engine.begin() as connection:
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
            connection.execute(
                update(RUN_TABLE).where(RUN_TABLE.c.id == trial.run_id).values(heartbeat_at=now())
            )

    def _add_trial_sqlite(self, trial: Trial, facts: dict[str, float | None] | None) -> None:
        """add_trial on SQLite through the DB-API connection: one transaction of plain
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
        values = trial.model_dump()
        row = [
            process(values[name]) if process is not None else values[name]
            for name, process in processors
        ]
        stamp = RUN_TABLE.c.heartbeat_at.type.bind_processor(self.engine.dialect)
        beat = stamp(now()) if stamp is not None else now()
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, row)
            trial.id = int(cursor.lastrowid or 0)
            if facts:
                cursor.executemany(
                    "INSERT INTO trial_fact (trial_id, name, value) VALUES (?, ?, ?)",
                    [(trial.id, name, value) for name, value in facts.items()],
                )
            cursor.execute("UPDATE run SET heartbeat_at = ? WHERE id = ?", (beat, trial.run_id))
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()  # back to the pool

    def claim_run(self, run_id: int, host: str, pid: int) -> None:
        """Mark a run as running again under this orchestrator (for a resume)."""
        with self.session() as session:
            run = session.get(Run, run_id)
            assert run is not None
            run.status, run.finished_at = "running", None
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

    def cell_ids(self, run_id: int) -> dict[int, int]:
        """Cell id by position, for one run."""
        frame = self._frame("SELECT id, position FROM cell WHERE run_id = :run_id", run_id)
        return {int(p): int(i) for i, p in zip(frame["id"], frame["position"], strict=True)}

    def finish_run(
        self, run_id: int, status: str, closing: dict[str, float | None] | None = None
    ) -> None:
        """Mark a run finished, interrupted or failed; store the environment's closing
        figures (``load_avg_end``, ``cpu_percent_end``)."""
        with self.session() as session:
            run = session.get(Run, run_id)
            environment = session.get(Environment, run_id)
            assert run is not None
            run.status = status
            run.finished_at = now()
            if environment is not None:
                for key, value in (closing or {}).items():
                    setattr(environment, key, value)

    def set_stop_reasons(self, reasons: dict[int, str]) -> None:
        """Record why each cell (by id) got no more trials."""
        with self.session() as session:
            for cell_id, reason in reasons.items():
                cell = session.get(Cell, cell_id)
                if cell is not None:
                    cell.stop_reason = reason

    def save_cell_stats(self, run_id: int, summary: pd.DataFrame) -> None:
        """Replace the run's cell statistics with ``summary`` (one row per cell_id)."""
        columns = set(CellStats.model_fields)
        rows = summary.astype(object).where(summary.notna(), None).to_dict("records")
        with self.session() as session:
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

    def environment(self, run_id: int) -> Environment | None:
        """The environment row of a run."""
        with self.session() as session:
            return session.get(Environment, run_id)

    def trials_frame(self, run_id: int) -> pd.DataFrame:
        """The run's measured trials (the ``trial_results`` view) as a DataFrame."""
        return self._frame(
            "SELECT * FROM trial_results WHERE run_id = :run_id ORDER BY sequence", run_id
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

    def trial_counts(self, run_id: int) -> dict[str, int]:
        """How many measured trials of the run ended in each status."""
        frame = self._frame(
            "SELECT status, COUNT(*) AS n FROM trial_results "
            "WHERE run_id = :run_id GROUP BY status",
            run_id,
        )
        return {str(k): int(v) for k, v in zip(frame["status"], frame["n"], strict=True)}

    def interpreters_frame(self, run_id: int) -> pd.DataFrame:
        """The run's probed interpreters (empty for runs stored before they were kept)."""
        return self._frame("SELECT * FROM run_interpreter WHERE run_id = :run_id", run_id)

    def interpreters(self, run_id: int) -> list[str]:
        """The distinct interpreters of a run's cells."""
        frame = self._frame("SELECT DISTINCT interpreter FROM cell WHERE run_id = :run_id", run_id)
        return [str(value) for value in frame["interpreter"]]

    def _frame(self, sql: str, run_id: int) -> pd.DataFrame:
        with self.engine.connect() as connection:
            return pd.read_sql(text(sql), connection, params={"run_id": run_id})


def to_json(value: Any) -> str:
    """Compact JSON for the ``*_json`` columns."""
    return json.dumps(value, sort_keys=True, default=repr)


# sqlite3 authorizer action codes that change something (sqlite.org/c3ref/c_alter_table.html)
_WRITE_ACTIONS = {
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    23,
    24,
    25,
    26,
    27,
    29,
    30,
    32,
}
_READ_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "database_list",
    "table_list",
    "collation_list",
    "function_list",
    "pragma_list",
    "compile_options",
}
_DENY, _OK = 1, 0


def _read_only_authorizer(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    if action in _WRITE_ACTIONS:
        return _DENY
    if action == 19 and arg2 is not None and (arg1 or "").lower() not in _READ_PRAGMAS:
        return _DENY  # a PRAGMA that sets a value
    return _OK


def query(url: str, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run one read-only statement; anything that would write raises QueryError."""
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                raw = connection.connection.driver_connection
                raw.set_authorizer(_read_only_authorizer)  # type: ignore[union-attr]
            else:
                connection.execute(text("SET TRANSACTION READ ONLY"))
            if engine.dialect.name == "sqlite":  # sqlite3 binds :name itself
                result = connection.exec_driver_sql(sql, () if params is None else params)
            else:  # other drivers use other placeholders: let SQLAlchemy bind :name
                result = connection.execute(text(sql), params or {})
            if not result.returns_rows:
                raise QueryError("the statement returned no rows; pipeline query only reads")
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    except DBAPIError as error:
        message = str(error.orig).strip()
        if "not authorized" in message or "readonly" in message or "read-only" in message:
            raise QueryError(
                f"refused: the statement would write ({message}); pipeline query is read-only"
            ) from None
        raise QueryError(f"bad SQL: {message}") from None
    finally:
        engine.dispose()
