"""The results database's schema: SQLModel tables, with units in column names, and the
public SQL views (stable names for people and tools; docs/schema.md documents both)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Table
from sqlmodel import Field, SQLModel

from ..cells import sql_columns
from ..metrics import SUMMARY_METRICS
from ..status import RunStatus

# 3: run_interpreter; 4: hosts (run_host, cell.host, trial.host); 5: the observer's cost
# and the machine's speed (trial.observer_cpu_s, sampler_cpu_s, reference_s; run.sampling
# and warmup_items); 6: run.trial_process; 7: cell_stats.speedup_ci_level, and speedup the
# ratio of geometric means its interval is about (was: of medians)
SCHEMA_VERSION = 7


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class Run(SQLModel, table=True):
    """One execution of a spec."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    description: str = ""
    status: str = RunStatus.RUNNING  # a RunStatus
    spec_path: str = ""
    spec_text: str = ""
    spec_hash: str = ""
    seed: int = 0
    repetitions: int = 0  # measured trials per cell (the minimum when adaptive)
    repetitions_max: int | None = None  # adaptive: the most trials a cell may get
    target_ci: float | None = None  # adaptive: relative half-width of the median's 95% CI
    budget_s: float | None = None  # adaptive: seconds the extra trials may take
    time_limit_s: float | None = None  # adaptive: no extra round starts after this long
    margin: float | None = None  # practical margin of the verdicts (0.10: 10%); None: default
    pair_rounds: bool | None = None  # comparisons paired by round (None: not, as before)
    limits_json: str = "{}"  # what each trial could use: memory_bytes, processes, output_bytes
    warmup: int = 0
    items: int = 0
    timeout_s: float = 0.0
    trial_order: str = ""
    trial_count: int = 0
    sample_interval_s: float = 0.0  # the observer's first sampling interval
    sampling_memory: str | None = None  # uss, rss or off (None: uss, as before)
    warmup_items: int | None = None  # items per worker before the timed work (None: 0)
    trial_process: str | None = None  # warm (forked from a fork server) or fresh (None: fresh)
    pipeline_version: str = ""
    started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    # who runs it, and when it last finished a trial: a "running" run whose orchestrator
    # is gone (dead pid on this host, or no heartbeat for longer than a trial can take) is
    # resumable
    orchestrator_host: str = ""
    orchestrator_pid: int | None = None
    heartbeat_at: datetime | None = None


class EnvironmentRow(SQLModel, table=True):
    """The machine and software a run was measured on (one row per run)."""

    __tablename__ = "environment"

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
    cpu_quota: float | None = None  # the cgroup's CPU quota in CPUs (None: unlimited)
    usable_cores: float | None = None  # affinity capped by the quota: CPUs a run can keep busy
    isolated_cpus: str | None = None  # kernel isolcpus, where set
    aslr: str | None = None  # /proc/sys/kernel/randomize_va_space, e.g. "2 (full)"
    memory_available_bytes: int | None = Field(default=None, sa_type=BigInteger)
    cpu_percent_start: float | None = None  # other programs' CPU use just before the run
    cpu_percent_end: float | None = None
    details_json: str = "{}"  # anything else captured (see environment.py)


class CellRow(SQLModel, table=True):
    """One point of a run's matrix, as stored (planning.matrix.Cell is the one planned)."""

    __tablename__ = "cell"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    position: int
    task: str = Field(index=True)
    model: str = Field(index=True)
    workers: int = Field(index=True)
    payload_bytes: int = Field(index=True, sa_type=BigInteger)
    interpreter: str = Field(index=True)
    variant: str = Field(default="", index=True)  # swept task parameters ("" when none)
    host: str = Field(default="", index=True)  # cluster host of a `hosts: each` run, else ""
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
    status: str  # a TrialStatus: ok, error, timeout, crashed, skipped, or over a limit
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
    started_at: datetime = Field(default_factory=now)  # when its worker process started
    finished_at: datetime | None = None  # when its worker process was reaped
    host: str = Field(default="", index=True)  # the cluster worker that ran it ("" locally)
    note: str | None = None  # what happened on the way, e.g. run again after a worker died
    # the harness's own cost: the observing process's CPU while the trial ran (every
    # thread), and the memory sampler's share of it
    observer_cpu_s: float | None = None
    sampler_cpu_s: float | None = None
    # the machine's speed: the reference loop's wall time just before the trial
    reference_s: float | None = None
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
    ci_level_wall: float | None = None  # its actual level: 0.95, or less with few trials
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
    # baseline / cell wall time, geometric means on the rounds both ran (schema 7; before:
    # the ratio of medians), and its t-interval: 95% over all the run's looks, each look's
    # interval at speedup_ci_level (0.95 when the run is not adaptive)
    speedup: float | None = None
    speedup_ci_low: float | None = None
    speedup_ci_high: float | None = None
    speedup_ci_level: float | None = None
    efficiency: float | None = None
    ideal_speedup: float | None = None
    karp_flatt: float | None = None  # serial fraction (1/S - 1/n) / (1 - 1/n), n > 1
    median_observer_cpu_s: float | None = None  # the observing process's CPU per trial
    # the sampler's CPU during the timed phases (at its rate over the worker's life) over
    # the cell's CPU time in them: what the observer took from the work
    observer_share: float | None = None
    relative_speed: float | None = None  # run's median reference time / the cell's (<1: slow)
    median_wall_s_adjusted: float | None = None  # each wall_s scaled by the machine's speed
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


class RunHost(SQLModel, table=True):
    """A cluster host that ran a run's trials, as described there when the run started."""

    __tablename__ = "run_host"

    run_id: int = Field(primary_key=True, foreign_key="run.id")
    name: str = Field(primary_key=True)  # the Dask worker's name; what trial.host says
    address: str = ""  # the Dask worker's address when the run started
    hostname: str = ""
    os: str = ""
    cpu_model: str = ""
    cpu_logical: int | None = None
    usable_cores: float | None = None
    memory_total_bytes: int | None = Field(default=None, sa_type=BigInteger)
    python_version: str = ""  # the interpreter running the Dask worker
    interpreters_json: str = "{}"  # interpreter label -> version and executable there
    environment_json: str = "{}"  # everything captured there (as the environment table)


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself, such as the schema version."""

    key: str = Field(primary_key=True)
    value: str


TRIAL_TABLE: Table = Trial.__table__  # type: ignore[attr-defined]
FACT_TABLE: Table = TrialFact.__table__  # type: ignore[attr-defined]
RUN_TABLE: Table = Run.__table__  # type: ignore[attr-defined]

_CELL_COLUMNS = sql_columns("c")
VIEWS = {
    "trial_results": f"""
        SELECT t.run_id, t.cell_id, t.id AS trial_id, {_CELL_COLUMNS}, t.repetition,
               t.sequence, t.status, t.wall_s, t.startup_s, t.shutdown_s, t.process_s,
               t.cpu_user_s, t.cpu_sys_s, t.peak_rss_bytes, t.items_done, t.items_failed,
               t.latency_p50_s, t.latency_p95_s, t.latency_p99_s, t.throughput_items_s,
               t.cpu_utilisation, t.peak_uss_bytes, t.peak_pss_bytes,
               t.ctx_switches_voluntary, t.ctx_switches_involuntary, t.start_method,
               t.python_version, t.python_implementation, t.gil_enabled,
               t.free_threaded_build, t.switch_interval_s, t.error, t.started_at,
               t.finished_at, t.host AS trial_host, t.note, t.observer_cpu_s,
               t.sampler_cpu_s, t.reference_s
        FROM trial t JOIN cell c ON c.id = t.cell_id
        WHERE NOT t.warmup""",
    "trial_facts": f"""
        SELECT t.run_id, t.cell_id, t.id AS trial_id, {_CELL_COLUMNS}, t.repetition,
               t.status, f.name, f.value
        FROM trial_fact f JOIN trial t ON t.id = f.trial_id JOIN cell c ON c.id = t.cell_id
        WHERE NOT t.warmup""",
    "cell_summary": f"""
        SELECT c.run_id, c.id AS cell_id, {_CELL_COLUMNS}, c.stop_reason,
               {", ".join(f"s.{column}" for column in SUMMARY_METRICS)}, s.warnings
        FROM cell c JOIN cell_stats s ON s.cell_id = c.id""",
}


def to_json(value: Any) -> str:
    """Compact JSON for the ``*_json`` columns."""
    return json.dumps(value, sort_keys=True, default=repr)
