"""What the terminal shows: the progress bar, the dry run's plan, plain lines, and
DataFrames in each output format (one table of formats for every command)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from . import app
from .planning import matrix

out = Console()
err = Console(stderr=True)


class Format(str, Enum):
    """Output formats of ``pipeline query``."""

    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


def say(text: str) -> None:
    """One plain line on stdout: no rich markup highlighting, long paths wrapped whole."""
    out.print(text, highlight=False, soft_wrap=True)


def _table(frame: Any, title: str | None = None) -> None:
    """A DataFrame as a rich table on stdout (long values fold, never cut)."""
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*["" if value is None else str(value) for value in row])
    out.print(table)


def _markdown(frame: Any) -> str:
    header = [str(column) for column in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        cells = ["" if value is None else str(value).replace("|", "\\|") for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# The text formats: a DataFrame as the text written to stdout.
TEXT_WRITERS: dict[Format, Callable[[Any], str]] = {
    Format.csv: lambda frame: str(frame.to_csv(index=False)),
    Format.json: lambda frame: frame.to_json(orient="records", date_format="iso", indent=2) + "\n",
    Format.markdown: _markdown,
}


def print_frame(frame: Any, output_format: Format, title: str | None = None) -> None:
    """A DataFrame on stdout as a table, CSV, JSON or Markdown."""
    if output_format is Format.table:
        _table(frame, title)
    else:
        sys.stdout.write(TEXT_WRITERS[output_format](frame))


class BarProgress:
    """A rich progress bar with ETA; the description names the cell running now."""

    def __init__(self, console: Console) -> None:
        self._bar = RichProgress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} not ok"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._bar.add_task("starting", total=None, failed=0)
        self._failed = 0
        self._total = 0

    def begin(self, total: int) -> None:
        self._total = total
        self._bar.update(self._task, total=total)

    def extend(self, extra: int) -> None:
        self._total += extra
        self._bar.update(self._task, total=self._total)
        self._bar.start()

    def trial_started(self, plan: matrix.TrialPlan) -> None:
        kind = "warm-up" if plan.warmup else f"rep {plan.repetition + 1}"
        self._bar.update(self._task, description=f"{plan.cell.label()} ({kind})")

    def trial_finished(self, plan: matrix.TrialPlan, status: str) -> None:
        self._failed += status != "ok"
        self._bar.update(self._task, advance=1, failed=self._failed)

    def end(self) -> None:
        self._bar.update(self._task, description="done")
        self._bar.stop()


def print_plan(planned: app.Plan) -> None:
    table = Table(title=f"{planned.spec.name}: cells in run order")
    swept = any(cell.variant for cell in planned.cells)
    columns = ["#", "task", *(["variant"] if swept else []), "model", "workers"]
    skips = {cell.position: planned.skip_reason(cell) for cell in planned.cells}
    notes = ["skipped"] if any(skips.values()) else []
    for column in (*columns, "payload_bytes", "interpreter", *notes):
        table.add_column(
            column, justify="right" if column in ("#", "workers", "payload_bytes") else "left"
        )
    for cell in planned.cells:
        table.add_row(
            str(cell.position),
            cell.task,
            *([cell.variant_label] if swept else []),
            cell.model,
            str(cell.workers),
            str(cell.payload_bytes),
            cell.interpreter,
            *(["yes" if skips[cell.position] else ""] if notes else []),
        )
    out.print(table)
    for label, probe in planned.probes.items():
        say(f"interpreter {label}: {probe.description} ({probe.executable})")
        for model in dict.fromkeys(cell.model for cell in planned.cells):
            reason = probe.unsupported(model)
            if reason:
                say(f"  skips {model}: {reason}")
    measured = len(planned.trials) - planned.warmup_count
    settings = planned.spec.adaptive
    more = (
        f"; adaptive: up to {len(planned.cells) * (settings.max - settings.min)} more, until "
        f"each median is known to ±{settings.target_ci:.1%}"
        if settings
        else ""
    )
    say(
        f"{len(planned.cells)} cells, {len(planned.trials)} trials "
        f"({planned.warmup_count} warm-up + {measured} measured{more}); dry run: nothing "
        "was run or written"
    )
