"""The ``pipeline`` command: thin wrappers that parse options and call :mod:`pipeline.app`."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import signal
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from . import __version__, app, terminal
from .errors import PipelineError
from .storage import readonly

cli = typer.Typer(
    help="Threads or processes? Run an experiment matrix, store every trial in SQL, "
    "and publish an HTML report with the answer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
P = ParamSpec("P")
R = TypeVar("R")
out, err = terminal.out, terminal.err

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy database URL [default: $PIPELINE_DB or sqlite:///data/results.db]",
        show_default=False,
    ),
]
FormatOption = Annotated[terminal.Format, typer.Option("--format", "-f", help="Output format.")]
RunArgument = Annotated[str, typer.Argument(metavar="[RUN]", help="Run id, or 'latest'.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _errors_exit_2(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the library's known errors (bad spec, SQL, run id, URL...) into one line on
    stderr and exit code 2: the one place a command's PipelineError becomes a message."""

    @functools.wraps(command)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except PipelineError as error:
            raise _fail(str(error)) from None

    return guarded


def _version(value: bool) -> None:
    if value:
        out.print(f"pipeline {__version__}")
        raise typer.Exit()


@cli.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Threads or processes? Measure it."""


@cli.command()
@_errors_exit_2
def run(
    spec: Annotated[
        Path,
        typer.Argument(
            help="Experiment spec (YAML), e.g. experiments/quick.yaml.", show_default=False
        ),
    ],
    db: DbOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="List the cells and the trial count; run and write nothing."
        ),
    ] = False,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Store the trials but do not write the HTML report.")
    ] = False,
    reports_dir: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = (
        app.DEFAULT_REPORTS_DIR
    ),
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no verdict table.")
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="[RUN]",
            help="Resume an interrupted run (its id; alone or 'latest': the newest "
            "resumable run of this spec), running only the trials it lacks.",
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            envvar="PIPELINE_CLUSTER",
            metavar="ADDRESS",
            help="Run the trials on a Dask distributed cluster (tcp://HOST:8786), one at a "
            "time per host; the spec's hosts key says spread or each (README: clusters).",
        ),
    ] = None,
) -> None:
    """Run every trial of SPEC, store each as it finishes, then write the report.

    Exit codes: 0 run finished (failed trials are data), 2 bad input, 130 interrupted
    (finished trials are kept).
    """
    planned = app.plan(spec, cluster)
    try:
        for warning in planned.warnings():
            terminal.warn(warning)
        if dry_run:
            terminal.print_plan(planned, app.claim_power(planned))
            return
        progress = None if quiet or not err.is_terminal else terminal.BarProgress(err)
        outcome = app.run(
            planned,
            app.database_url(db),
            progress=progress,
            reports_dir=None if no_report else reports_dir,
            resume=resume,
        )
    except app.Interrupted as stopped:
        err.print(
            f"interrupted: run {stopped.run_id} keeps its finished trials "
            f"(pipeline run SPEC --resume {stopped.run_id} runs the rest; pipeline report "
            f"{stopped.run_id} builds a report of them)"
        )
        raise typer.Exit(130) from None
    finally:
        planned.close()
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items()))
    if not quiet:
        terminal.print_verdicts(
            app.verdicts(app.open_store(db), outcome.run_id),
            title=f"run {outcome.run_id}: verdicts on the explainer's claims",
        )
    terminal.say(f"run {outcome.run_id} {outcome.status}: {counts}")
    if outcome.report_path is not None:
        terminal.say(f"report: {outcome.report_path}")


@cli.command()
@_errors_exit_2
def advise(
    function: Annotated[
        str,
        typer.Argument(
            metavar="MODULE:FUNCTION",
            help="Your function, called as FUNCTION(item) (or FUNCTION() without --inputs).",
            show_default=False,
        ),
    ],
    inputs: Annotated[
        str,
        typer.Option(
            "--inputs",
            metavar="MODULE:FACTORY",
            help="A callable that returns the list of work items.",
        ),
    ] = "",
    items: Annotated[
        int,
        typer.Option("--items", min=1, max=1_000_000, help="Calls without --inputs."),
    ] = 32,
    python_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--python-path",
            metavar="DIR",
            help="A folder to import from (the current one always is); repeatable.",
        ),
    ] = None,
    budget: Annotated[
        float,
        typer.Option(
            "--budget",
            min=5,
            metavar="SECONDS",
            help="Time for the whole study; configurations are left out so that three rounds "
            "fit, and those run in any case.",
        ),
    ] = 60.0,
    interpreter: Annotated[
        list[str] | None,
        typer.Option(
            "--interpreter",
            metavar="PATH",
            help="Another interpreter to try (a free-threaded build of make python-ft is "
            "tried anyway); repeatable.",
        ),
    ] = None,
    db: DbOption = None,
    reports_dir: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = (
        app.DEFAULT_REPORTS_DIR
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Threads or processes, and how many, for YOUR function on this machine: measured,
    decided by the verdicts' rule, with code to paste. Every trial is stored as a run.

    Exit codes: 0 advice given (also when undecided), 2 bad input, 130 interrupted.
    """
    progress = None if quiet or as_json or not err.is_terminal else terminal.BarProgress(err)
    try:
        found = app.advise(
            function,
            db,
            inputs=inputs,
            items=items,
            python_path=python_path,
            budget_s=budget,
            interpreters=interpreter,
            reports_dir=reports_dir,
            progress=progress,
        )
    except app.Interrupted as stopped:
        err.print(f"interrupted: run {stopped.run_id} keeps its finished trials")
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(found.answer), indent=2, default=str))
        return
    terminal.print_advice(found.answer)
    terminal.say(f"run {found.run_id} stored (pipeline show {found.run_id})")
    if found.page_path is not None:
        terminal.say(f"advice: {found.page_path}")


@cli.command()
@_errors_exit_2
def report(
    run_id: RunArgument = "latest",
    db: DbOption = None,
    reports_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for the reports; the "
            "run's page goes to OUT/run-ID/index.html and "
            "the list of runs to OUT/index.html.",
        ),
    ] = (app.DEFAULT_REPORTS_DIR),
) -> None:
    """(Re)build the HTML report of a run and the index of all runs."""
    page = app.build_report(app.open_store(db), run_id, reports_dir)
    terminal.say(f"report: {page}")


@cli.command()
@_errors_exit_2
def publish(
    db: DbOption = None,
    reports_dir: Annotated[
        Path, typer.Option("--out", help="Folder of the site: OUT/index.html, OUT/run-ID/.")
    ] = app.DEFAULT_REPORTS_DIR,
) -> None:
    """Rebuild the report of every run in the database and the index of them all."""
    pages = app.publish(app.open_store(db), reports_dir)
    terminal.say(f"published {len(pages)} run(s): {reports_dir / 'index.html'}")


@cli.command()
@_errors_exit_2
def verdicts(
    run_id: RunArgument = "latest",
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    details: Annotated[
        bool,
        typer.Option("--details", help="Also every comparison behind each verdict, in words."),
    ] = False,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Only the cells of this host (a run with hosts: each)."),
    ] = None,
) -> None:
    """Verdicts of a run on each claim of the threads-vs-processes explainer."""
    found = app.verdicts(app.open_store(db), run_id, host=host)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(verdict) for verdict in found], indent=2))
        return
    terminal.print_verdicts(found)
    if details:
        from .analysis.claims import iter_lines

        for line in iter_lines(found):
            terminal.say(line)


@cli.command()
@_errors_exit_2
def query(
    sql: Annotated[
        str,
        typer.Argument(
            help='One SQL statement, e.g. "SELECT * FROM cell_summary".', show_default=False
        ),
    ],
    db: DbOption = None,
    output_format: FormatOption = terminal.Format.table,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Named parameter, NAME=VALUE or NAME VALUE, used as :NAME in the SQL; repeatable.",
        ),
    ] = None,
) -> None:
    """Read-only SQL over the results (views: trial_results, cell_summary).

    The database is opened read-only; a statement that would write is refused (exit 2).
    """
    frame = readonly.query(app.database_url(db), sql, _params(param or []))
    terminal.print_frame(frame, output_format)


@cli.command()
@_errors_exit_2
def runs(
    db: DbOption = None,
    output_format: FormatOption = terminal.Format.table,
) -> None:
    """The runs in the database, newest first: status, start, duration, host, trials."""
    frame = app.runs_frame(app.open_store(db))
    terminal.print_frame(frame, output_format)


@cli.command()
@_errors_exit_2
def show(
    run_id: RunArgument = "latest",
    db: DbOption = None,
) -> None:
    """A run's environment, spec and cell summary."""
    run_row, environment, summary = app.show(app.open_store(db), run_id)
    terminal.say(
        f"run {run_row.id} {run_row.name} ({run_row.status}), started {run_row.started_at}"
    )
    terminal.print_environment(environment)
    ran_on = app.hosts(app.open_store(db), run_row.id or 0)
    if not ran_on.empty:
        terminal.print_frame(ran_on, terminal.Format.table, title="cluster hosts")
    terminal.say(f"spec ({run_row.spec_path}):")
    out.print(run_row.spec_text, markup=False, highlight=False)
    terminal.print_frame(summary, terminal.Format.table, title="cell summary")


@cli.command()
@_errors_exit_2
def compare(
    first: Annotated[str, typer.Argument(metavar="RUN_A", help="The baseline run.")],
    second: Annotated[
        str | None,
        typer.Argument(
            metavar="[RUN_B]",
            help="The run to compare with it (none with --hosts).",
            show_default=False,
        ),
    ] = None,
    hosts: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--hosts",
            metavar="A B",
            help="Compare two hosts of RUN_A (a run with hosts: each) instead of two runs.",
        ),
    ] = None,
    db: DbOption = None,
    output_format: FormatOption = terminal.Format.table,
    fail_above: Annotated[
        float | None,
        typer.Option(
            "--fail-above",
            metavar="PCT",
            help="Exit 1 when some cell's interval lies wholly above 1 + PCT/100: slower by "
            "more than PCT percent. Also the verdicts' threshold.",
        ),
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column in the table, not only the main ones.")
    ] = False,
) -> None:
    """The cells two runs (or two hosts of one run) share, side by side: the change of the
    geometric mean of their wall times with its interval (Welch's, at 1 - 2α/m over the m
    cells), and a verdict per cell against a threshold (10%, or --fail-above): slower, not
    slower, or undecided (rerun with more trials)."""
    if (second is None) == (hosts is None):
        raise _fail("compare needs RUN_A RUN_B, or RUN_A --hosts A B")
    threshold = None if fail_above is None else fail_above / 100.0
    if fail_above is not None and not 0 <= fail_above < 1000:
        raise _fail(f"--fail-above {fail_above:g}: give a percentage from 0 to 1000")
    if hosts is not None:
        compared = app.compare_hosts(app.open_store(db), first, *hosts, threshold)
        if compared.empty:
            raise _fail(
                f"hosts {hosts[0]} and {hosts[1]} of run {first} share no cell with ok trials"
            )
    else:
        assert second is not None
        compared = app.compare_runs(app.open_store(db), first, second, threshold)
        if compared.empty:
            raise _fail(f"runs {first} and {second} share no cell with ok trials")
    if output_format is terminal.Format.table and not wide:
        terminal.print_frame(terminal.compare_view(compared), output_format)
        _gate(compared, fail_above)
        return
    shown = compared.assign(
        **{
            column: (compared[column] * 100).round(1)
            for column in ("change", "change_ci_low", "change_ci_high", "threshold")
        },
        level=compared["level"].round(5),
    ).rename(
        columns={
            "change": "change_%",
            "change_ci_low": "ci_low_%",
            "change_ci_high": "ci_high_%",
            "threshold": "threshold_%",
        }
    )
    terminal.print_frame(shown, output_format)
    _gate(compared, fail_above)


def _gate(compared: Any, fail_above: float | None) -> None:
    """``--fail-above PCT``: exit 1 when some cell's interval lies wholly above the
    threshold."""
    if fail_above is not None:
        slower = app.regressions(compared, fail_above)
        if not slower.empty:
            err.print(
                f"{len(slower)} cell(s) slower by more than {fail_above:g}% "
                f"(interval wholly above, at {compared['level'].iloc[0]:.2%} each)",
                highlight=False,
            )
            raise typer.Exit(1)


class Export(StrEnum):
    """File formats of ``pipeline export``."""

    csv = "csv"
    json = "json"
    parquet = "parquet"


@cli.command()
@_errors_exit_2
def export(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id, or 'latest'.")],
    db: DbOption = None,
    file_format: Annotated[Export, typer.Option("--format", "-f", help="File format.")] = (
        Export.csv
    ),
    table: Annotated[
        str, typer.Option("--table", help="What to export: trials, summary or facts.")
    ] = "trials",
    output: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write (default: run-ID-TABLE.FORMAT)."),
    ] = None,
) -> None:
    """Write one of a run's views (trials, summary, facts) to a CSV, JSON or Parquet file."""
    if table not in app.EXPORTS:
        raise _fail(f"--table: {table!r} is not one of {', '.join(app.EXPORTS)}")
    if file_format is Export.parquet and importlib.util.find_spec("pyarrow") is None:
        raise _fail("--format parquet needs pyarrow: .venv/bin/pip install pyarrow")
    found_id, frame = app.export_frame(app.open_store(db), run_id, table)
    path = output or Path(f"run-{found_id}-{table}.{file_format.value}")
    if file_format is Export.csv:
        frame.to_csv(path, index=False)
    elif file_format is Export.json:
        frame.to_json(path, orient="records", date_format="iso", indent=1)
    else:
        frame.to_parquet(path, index=False)
    terminal.say(f"{len(frame)} rows written to {path}")


def _params(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise _fail(f"--param {pair!r}: expected NAME=VALUE")
        values[name] = value
    return values


def normalise_args(args: list[str]) -> list[str]:
    """Two spellings typer cannot take directly: ``--resume`` given no value (last, or
    followed by another option) means ``--resume latest``; ``-p NAME VALUE`` (the
    contract's form) means ``-p NAME=VALUE``."""
    given: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        following = args[index + 1 : index + 3]
        if arg == "--resume" and (not following or following[0].startswith("-")):
            given += [arg, "latest"]
        elif arg in ("-p", "--param") and len(following) == 2 and "=" not in following[0]:
            given += [arg, f"{following[0]}={following[1]}"]
            index += 2
        else:
            given.append(arg)
        index += 1
    return given


def main() -> None:
    """Console-script entry point. SIGTERM ends any command as an exit (143), so that its
    cleanup runs (a report being written leaves no part-written file); ``run`` turns it
    into an interrupted run."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cli(args=normalise_args(sys.argv[1:]), prog_name="pipeline")


def _exit_on_sigterm(_signum: int, _frame: Any) -> None:
    raise SystemExit(143)
