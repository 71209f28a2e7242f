"""The commands that measure: ``pipeline run`` (a spec) and ``pipeline advise`` (a function);
and the one that stores measurements made elsewhere: ``pipeline import-pyperf``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from .. import app, terminal
from .common import (
    DbOption,
    cli,
    err,
    errors_exit_2,
)


@cli.command()
@errors_exit_2
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
            "time per host; the spec's hosts key says spread or each (docs/spec.md: clusters).",
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
        store = app.open_store(db)
        terminal.print_verdicts(
            app.verdicts(store, outcome.run_id),
            title=f"run {outcome.run_id}: verdicts on the explainer's claims",
        )
        terminal.warn_busy(app.other_programs(store, outcome.run_id))
    terminal.say(f"run {outcome.run_id} {outcome.status}: {counts}")
    if outcome.report_path is not None:
        terminal.say(f"report: {outcome.report_path}")


@cli.command()
@errors_exit_2
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


@cli.command("import-pyperf")
@errors_exit_2
def import_pyperf(
    file: Annotated[
        Path, typer.Argument(help="A pyperf JSON file (.json or .json.gz).", show_default=False)
    ],
    db: DbOption = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The run's name (default: pyperf FILE).")
    ] = None,
) -> None:
    """Store a pyperf suite as a run: each benchmark a sequential cell, each value a trial,
    beside the concurrency studies (then report, compare, query and export it as any run)."""
    run_id, benchmarks, values = app.import_pyperf(app.database_url(db), file, name)
    terminal.say(f"run {run_id}: {benchmarks} benchmarks, {values} values imported from {file}")
