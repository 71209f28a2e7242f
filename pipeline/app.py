"""The library behind the CLI, in one place: plan a run, run it into the store, publish
its report, read runs back. Each function is a short composition of the layers:

    planning (spec, matrix) -> execution (orchestrator, runner) -> storage (store)
        -> analysis (stats, claims, compare) -> publishing (charts, report, site)

Heavy layers (scipy, matplotlib) are imported by the functions that need them, so that
``pipeline --help`` stays quick.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import results
from .execution import trial
from .execution.orchestrator import Interrupted, Progress, QuietProgress, RunOutcome
from .execution.plan import Plan, plan
from .publishing import site
from .publishing.site import DEFAULT_REPORTS_DIR, report_dir_name
from .results import (
    EXPORTS,
    export_frame,
    hosts,
    load_summary,
    load_trials,
    other_programs,
    runs_frame,
    show,
    summarise,
    verdicts,
)
from .storage import engine
from .storage.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_REPORTS_DIR",
    "EXPORTS",
    "Interrupted",
    "Plan",
    "Progress",
    "QuietProgress",
    "RunOutcome",
    "advise",
    "build_report",
    "claim_power",
    "compare_hosts",
    "compare_runs",
    "database_url",
    "export_frame",
    "hosts",
    "load_summary",
    "load_trials",
    "open_store",
    "other_programs",
    "plan",
    "publish",
    "regressions",
    "report_dir_name",
    "run",
    "runs_frame",
    "show",
    "summarise",
    "verdicts",
]


def database_url(db: str | None = None) -> str:
    """``db``, else ``$PIPELINE_DB``, else data/results.db under the working directory."""
    return db or engine.default_url()


def open_store(db: str | None = None, *, read_only: bool = False) -> Store:
    """The results database at :func:`database_url` ``(db)``, which must exist: the
    commands that only read never create one (a missing SQLite file is a DatabaseError).
    ``read_only``: opened so that nothing can be written (see Store)."""
    url = database_url(db)
    engine.require_existing(url)
    return Store(url, read_only=read_only)


def run(
    planned: Plan,
    url: str,
    *,
    progress: Progress | None = None,
    execute: trial.Execute | None = None,
    reports_dir: Path | None = DEFAULT_REPORTS_DIR,
    resume: str | None = None,
) -> RunOutcome:
    """Run every trial of ``planned`` (each stored as it finishes), summarise the run and,
    unless ``reports_dir`` is None, publish its report. With ``resume`` (a run id, or
    "latest"), run only the trials that run lacks."""
    from .execution import orchestrator

    outcome = orchestrator.run(planned, url, progress=progress, execute=execute, resume=resume)
    if reports_dir is None:
        return outcome
    page = build_report(Store(url), outcome.run_id, reports_dir)
    return dataclasses.replace(outcome, report_path=page)


def advise(
    function: str,
    db: str | None = None,
    *,
    inputs: str = "",
    items: int = 32,
    python_path: list[Path] | None = None,
    budget_s: float = 60.0,
    interpreters: list[str] | None = None,
    reports_dir: Path | None = DEFAULT_REPORTS_DIR,
    progress: Progress | None = None,
) -> Any:
    """Study ``function`` (module:function) on this machine and say which concurrency
    suits it (pipeline.advice); the study is stored as a run of ``db``."""
    from .advice import plan, study
    from .errors import AdviceError

    if function.count(":") != 1 or not all(function.split(":")):
        raise AdviceError(f"{function!r}: expected MODULE:FUNCTION, e.g. mymodule:work")
    if inputs and (inputs.count(":") != 1 or not all(inputs.split(":"))):
        raise AdviceError(f"--inputs {inputs!r}: expected MODULE:FACTORY, e.g. mymodule:items")
    folders = [Path.cwd(), *(python_path or [])]
    for folder in folders:
        if not folder.is_dir():
            raise AdviceError(f"--python-path {folder}: not a folder")
    options = plan.Options(
        function,
        inputs,
        items,
        tuple(str(folder.resolve()) for folder in folders),
        budget_s,
        tuple(interpreters or ()),
    )
    return study.advise(options, database_url(db), reports_dir=reports_dir, progress=progress)


def build_report(
    store: Store, run: str | int | None, reports_dir: Path, *, index: bool = True
) -> Path:
    """A run's report (and the index of runs); for a ``pipeline advise`` study also its
    advice page, next to it. With the index, an explorer.html already in ``reports_dir``
    is brought up to date, so that the index never links to one that lacks the run."""
    from .advice import study
    from .publishing import index_page

    page = site.build_report(store, run, reports_dir, index=index)
    study.write_advice_page(store, store.resolve_run(run).id or 0, page.parent)
    explorer = reports_dir / index_page.EXPLORER_FILE
    if index and explorer.exists():
        write_explorer(store, explorer, engine.shown_url(store.url))
    return page


def publish(store: Store, reports_dir: Path, database: str = "the database") -> list[Path]:
    """Rebuild the report of every run in the database, the explorer over them all
    (explorer.html) and the index, which links to it."""
    from .publishing import index_page

    pages = [
        build_report(store, row.id, reports_dir, index=False) for row in reversed(store.runs())
    ]
    write_explorer(store, reports_dir / index_page.EXPLORER_FILE, database, index=True)
    return pages


def compare_runs(
    store: Store, first: str | int, second: str | int, threshold: float | None = None
) -> pd.DataFrame:
    """The cells two runs share, side by side, with a verdict per cell against
    ``threshold`` (a share; default 10%)."""
    return results.compare_runs(store, first, second, threshold)


def compare_hosts(
    store: Store, run: str | int, first: str, second: str, threshold: float | None = None
) -> pd.DataFrame:
    """The cells two hosts of one run (hosts: each) share, side by side."""
    return results.compare_hosts(store, run, first, second, threshold)


def claim_power(planned: Plan) -> list[Any]:
    """Which claims the plan's cells can test, and the power of its repetitions to decide
    each at a typical noise level (see pipeline.analysis.power): at the minimum, and at
    the maximum where repetitions are adaptive."""
    import pandas as pd

    from .analysis import power
    from .analysis.inference import run_rule
    from .execution import records

    rows = [
        {
            "cell_id": cell.position,
            "task": cell.task,
            "variant": cell.variant_label,
            "model": cell.model,
            "workers": cell.workers,
            "payload_bytes": cell.payload_bytes,
            "interpreter": cell.interpreter,
            "host": cell.host,
            "gil_enabled": bool(planned.probes[cell.interpreter].facts.get("gil_enabled", True)),
        }
        for cell in planned.cells
        if not planned.skip_reason(cell)
    ]
    spec = planned.spec
    counts = [spec.min_repetitions, *([spec.adaptive.max] if spec.adaptive else [])]
    rule = run_rule(records.run_row(planned).model_dump())  # as the run will decide
    return [power.claim_power(pd.DataFrame(rows), n, rule) for n in counts]


def export_pyperf(store: Store, run: str | int | None, path: Path) -> tuple[int, int, int]:
    """Write a run as a pyperf JSON file (each cell a benchmark); (run id, benchmarks,
    values)."""
    from .results import pyperf

    run_id = store.resolve_run(run).id or 0
    data = pyperf.suite(store, run_id)
    pyperf.write_suite(data, path)
    values = sum(len(r["values"]) for bench in data["benchmarks"] for r in bench["runs"])
    return run_id, len(data["benchmarks"]), values


def import_pyperf(url: str, path: Path, name: str | None = None) -> tuple[int, int, int]:
    """Store a pyperf JSON file as a run of sequential cells in the database at ``url``
    (created if need be), with its cell statistics; (run id, benchmarks, values). A file
    that is not pyperf's: InterchangeError, and nothing written."""
    from .results import pyperf

    data = pyperf.read_suite(path)
    store = Store(url)
    run_id = pyperf.import_suite(store, data, str(path), name)
    summarise(store, run_id)
    values = sum(len(r.get("values", ())) for bench in data["benchmarks"] for r in bench["runs"])
    return run_id, len(data["benchmarks"]), values


def explorer_page(store: Store, database: str) -> str:
    """The explorer over every run of the database, as one HTML document."""
    from .publishing import explorer
    from .results import explore

    return explorer.page(explore.explorer_data(store), database)


def write_explorer(store: Store, path: Path, database: str, *, index: bool = False) -> Path:
    """Write the explorer to ``path``; as a reports folder's explorer.html (pipeline
    publish, make run), also rewrite that folder's index, which then links to it: where
    one exists, or always with ``index``."""
    from .publishing import files, index_page

    files.write(path, explorer_page(store, database))
    beside_index = index or (path.parent / "index.html").exists()
    if path.name == index_page.EXPLORER_FILE and beside_index:
        site.write_index(store, path.parent)
    return path


def serve_explorer(store: Store, database: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve the explorer on 127.0.0.1:port until interrupted: built before the address is
    given, and again at a visit when the database has changed since (Store.data_version)."""
    from .publishing import explorer

    built: dict[tuple[int, ...], str] = {}

    def current() -> str:
        version = store.data_version()
        if version not in built:
            page = explorer_page(store, database)
            built.clear()
            built[version] = page
        return built[version]

    current()
    explorer.serve(current, port, ready)


def regressions(compared: pd.DataFrame, fail_above_percent: float) -> pd.DataFrame:
    """The compared cells whose interval lies wholly above 1 + PCT/100."""
    from .analysis import compare

    return compare.regressions(compared, fail_above_percent)
