"""The commands that read the database: report, publish, verdicts, query, runs, show,
compare and export (``pipeline query`` cannot write)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import app, terminal
from ..storage import engine, readonly
from .common import (
    DbOption,
    FormatOption,
    RunArgument,
    cli,
    err,
    errors_exit_2,
    fail,
    out,
)


@cli.command()
@errors_exit_2
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
@errors_exit_2
def publish(
    db: DbOption = None,
    reports_dir: Annotated[
        Path, typer.Option("--out", help="Folder of the site: OUT/index.html, OUT/run-ID/.")
    ] = app.DEFAULT_REPORTS_DIR,
) -> None:
    """Rebuild the report of every run in the database, the explorer over them all
    (OUT/explorer.html, see pipeline explore) and the index of them all."""
    pages = app.publish(app.open_store(db), reports_dir, engine.shown_url(app.database_url(db)))
    terminal.say(f"published {len(pages)} run(s): {reports_dir / 'index.html'}")


@cli.command()
@errors_exit_2
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
    store = app.open_store(db)
    found = app.verdicts(store, run_id, host=host)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(verdict) for verdict in found], indent=2))
        return
    terminal.print_verdicts(found)
    terminal.warn_busy(app.other_programs(store, run_id))
    if details:
        from ..analysis.claims import iter_lines

        for line in iter_lines(found):
            terminal.say(line)


@cli.command()
@errors_exit_2
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
@errors_exit_2
def runs(
    db: DbOption = None,
    output_format: FormatOption = terminal.Format.table,
) -> None:
    """The runs in the database, newest first: status, start, duration, host, trials."""
    frame = app.runs_frame(app.open_store(db))
    terminal.print_frame(frame, output_format)


@cli.command()
@errors_exit_2
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
@errors_exit_2
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
        raise fail("compare needs RUN_A RUN_B, or RUN_A --hosts A B")
    threshold = None if fail_above is None else fail_above / 100.0
    if fail_above is not None and not 0 <= fail_above < 1000:
        raise fail(f"--fail-above {fail_above:g}: give a percentage from 0 to 1000")
    if hosts is not None:
        compared = app.compare_hosts(app.open_store(db), first, *hosts, threshold)
        if compared.empty:
            raise fail(
                f"hosts {hosts[0]} and {hosts[1]} of run {first} share no cell with ok trials"
            )
    else:
        assert second is not None
        compared = app.compare_runs(app.open_store(db), first, second, threshold)
        if compared.empty:
            raise fail(f"runs {first} and {second} share no cell with ok trials")
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
    pyperf = "pyperf"  # pyperf's JSON: each cell a benchmark, for pyperf stats/compare_to


@cli.command()
@errors_exit_2
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
    """Write one of a run's views (trials, summary, facts) to a CSV, JSON or Parquet file,
    or the run as a pyperf JSON file (--format pyperf: each cell a benchmark, each ok trial
    a value; read it with python -m pyperf stats / compare_to)."""
    if file_format is Export.pyperf:
        store = app.open_store(db)
        path = output or Path(f"run-{store.resolve_run(run_id).id}.pyperf.json")
        found_id, benchmarks, values = app.export_pyperf(store, run_id, path)
        terminal.say(f"run {found_id}: {benchmarks} benchmarks, {values} values written to {path}")
        return
    if table not in app.EXPORTS:
        raise fail(f"--table: {table!r} is not one of {', '.join(app.EXPORTS)}")
    if file_format is Export.parquet and importlib.util.find_spec("pyarrow") is None:
        raise fail("--format parquet needs pyarrow: .venv/bin/pip install pyarrow")
    found_id, frame = app.export_frame(app.open_store(db), run_id, table)
    path = output or Path(f"run-{found_id}-{table}.{file_format.value}")
    if file_format is Export.csv:
        frame.to_csv(path, index=False)
    elif file_format is Export.json:
        frame.to_json(path, orient="records", date_format="iso", indent=1)
    else:
        frame.to_parquet(path, index=False)
    terminal.say(f"{len(frame)} rows written to {path}")


@cli.command()
@errors_exit_2
def explore(
    db: DbOption = None,
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 to serve on (0: any free one).")
    ] = 8765,
    output: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the page to this file instead of serving it (as a reports "
            "folder's explorer.html, that folder's index.html is rewritten to link to it).",
        ),
    ] = None,
) -> None:
    """One page over every run of the database: pick runs, filter every axis, plot wall
    time, speedup, memory or start-up against workers, compare two runs (or two hosts)
    cell by cell, and each claim's verdict across runs. Served on 127.0.0.1 (rebuilt when
    the database changes) or written to one file with --out; works offline, never writes
    the database."""
    store = app.open_store(db, read_only=True)
    database = engine.shown_url(app.database_url(db))
    if output is not None:
        app.write_explorer(store, output, database)
        terminal.say(f"explorer written to {output}")
        return
    app.serve_explorer(
        store, database, port, lambda address: terminal.say(f"explorer on {address} (Ctrl-C stops)")
    )


def _params(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise fail(f"--param {pair!r}: expected NAME=VALUE")
        values[name] = value
    return values
