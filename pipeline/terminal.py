"""What the terminal shows: the progress bar, the dry run's plan, plain lines, and
DataFrames in each output format (one table of formats for every command)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
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
from rich.text import Text

from . import app, cells
from .analysis.machine import BUSY_CONSEQUENCE
from .metrics import METRICS, format_column, format_with_interval
from .planning import matrix
from .results.environment import environment_groups
from .status import TrialStatus, Verdict

out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    """Output formats of ``pipeline query``."""

    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


def say(text: str) -> None:
    """One plain line on stdout: no rich markup highlighting, long paths wrapped whole."""
    out.print(text, highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    """One warning line on stderr."""
    err.print(f"warning: {text}", highlight=False, soft_wrap=True, markup=False)


def warn_busy(warnings: list[str]) -> None:
    """The busy-machine warnings of a run, beside its verdicts or advice: other programs
    took cores from the parallel cells, so their gains are understated."""
    for text in warnings:
        warn(f"{text}; {BUSY_CONSEQUENCE}")


def for_people(frame: Any) -> dict[str, list[str]]:
    """Each column of a DataFrame as text for people: the metrics registry formats the
    columns it knows (times, bytes, ratios, shares...), the others print as they are."""
    return {str(column): format_column(str(column), frame[column]) for column in frame.columns}


def _table(frame: Any, title: str | None = None) -> None:
    """A DataFrame as a rich table on stdout (long values fold, never cut); numbers are
    right-aligned."""
    table = Table(title=title)
    columns = for_people(frame)
    for column in columns:
        numeric = str(frame[column].dtype) not in ("object", "string", "bool")
        table.add_column(column, overflow="fold", justify="right" if numeric else "left")
    for row in zip(*columns.values(), strict=True):
        table.add_row(*row)
    out.print(table)


def _markdown(frame: Any) -> str:
    columns = for_people(frame)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in zip(*columns.values(), strict=True):
        lines.append("| " + " | ".join(value.replace("|", "\\|") for value in row) + " |")
    return "\n".join(lines) + "\n"


# The text formats: a DataFrame as the text written to stdout (CSV and JSON stay raw).
TEXT_WRITERS: dict[Format, Callable[[Any], str]] = {
    Format.csv: lambda frame: str(frame.to_csv(index=False)),
    Format.json: lambda frame: frame.to_json(orient="records", date_format="iso", indent=2) + "\n",
    Format.markdown: _markdown,
}


def compare_view(compared: Any) -> Any:
    """The columns of ``pipeline compare`` a person needs, as text: the cell, both medians
    (descriptive), the change of the geometric means with its interval and level, and the
    verdict against the threshold (``--wide`` and ``--format csv|json`` give every
    column)."""
    import pandas as pd

    seconds, change = METRICS["median_first_s"], METRICS["change"]
    rows = [
        {
            "cell": cells.row_label(row)
            + (f" [{row['interpreter']}]" if "interpreter" in row else ""),
            "median A": seconds.format(row["median_first_s"]),
            "median B": seconds.format(row["median_second_s"]),
            "change (geometric means)": format_with_interval(
                row["change"], row["change_ci_low"], row["change_ci_high"], change.unit
            )
            + f" at {METRICS['level'].format(row['level'])}",
            "verdict": f"{row['verdict']} (threshold {row['threshold']:+.0%})",
        }
        for row in compared.to_dict("records")
    ]
    columns = ["cell", "median A", "median B", "change (geometric means)", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def print_environment(environment: dict[str, Any]) -> None:
    """A run's environment, grouped (CPU, memory, OS, Python, noise sources)."""
    table = Table(title="environment", show_header=False)
    table.add_column("fact", style="bold")
    table.add_column("value", overflow="fold")
    for group, facts in environment_groups(environment):
        table.add_section()
        table.add_row(f"[underline]{group}[/underline]", "")
        for label, value in facts:
            table.add_row(label, Text(value))
    out.print(table)


VERDICT_STYLES = {
    Verdict.SUPPORTED: "green",
    Verdict.CONTRADICTED: "red",
    Verdict.NUANCED: "yellow",
    Verdict.INCONCLUSIVE: "magenta",
    Verdict.NOT_MEASURED: "dim",
}


def print_verdicts(found: list[Any], title: str = "verdicts on the explainer's claims") -> None:
    """The verdict table: each claim, its verdict, the numbers behind it (the best or
    weakest comparison with its interval) and how many comparisons it rests on."""
    table = Table(title=title)
    table.add_column("claim", overflow="fold")
    table.add_column("verdict")
    table.add_column("ratio of geometric means [CI] (cells)", overflow="fold")
    table.add_column("comparisons", justify="right")
    for verdict in found:
        style = VERDICT_STYLES.get(verdict.verdict, "")
        table.add_row(
            Text(verdict.title or verdict.claim),
            Text(verdict.verdict, style=style),
            Text(verdict.headline or verdict.summary),
            str(verdict.comparisons or ""),
        )
    out.print(table)


def print_advice(answer: Any) -> None:
    """``pipeline advise``'s answer: the headline, the snippet, then the findings."""
    from rich.syntax import Syntax

    out.print(Text(answer.headline, style="bold"))
    out.print(Syntax(answer.snippet, "python", theme="ansi_dark", background_color="default"))
    for line in answer.lines:
        out.print(Text(f"- {line}"))


def print_claim_power(by_count: list[list[Any]]) -> None:
    """The claims a plan can test and how likely its repetitions are to decide each (at
    the minimum, and at the adaptive maximum when there is one)."""
    if not by_count:
        return
    table = Table(title="claims this spec can test (power at CV 10%, by the run's rule and looks)")
    table.add_column("claim", overflow="fold")
    table.add_column("comparisons", justify="right")
    for found in by_count:
        n = found[0].trials
        table.add_column(f"calls 1.5× a gain (by {n} trials)", justify="right")
        table.add_column(f"rules a gain out at 1.0× (by {n})", justify="right")
    for row in zip(*by_count, strict=True):
        first = row[0]
        if not first.measured:
            continue
        if not first.comparisons:
            cells = ["by counts", *(["any trial decides", ""] * len(row))]
        else:
            cells = [str(first.comparisons)]
            for found in row:
                cells += [f"{found.detects_gain:.0%}", f"{found.rules_out_gain:.0%}"]
        table.add_row(first.title, *cells)
    out.print(table)
    unmeasured = [row[0].title for row in zip(*by_count, strict=True) if not row[0].measured]
    if unmeasured:
        say(f"not measured by this spec: {'; '.join(unmeasured)}")


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
            refresh_per_second=2,  # the observer shares the cores with CPU-bound trials
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
        self._failed += status != TrialStatus.OK
        self._bar.update(self._task, advance=1, failed=self._failed)

    def end(self) -> None:
        self._bar.update(self._task, description="done")
        self._bar.stop()


def print_plan(planned: app.Plan, claim_power: list[list[Any]] | None = None) -> None:
    """The dry run: the cells in run order, the interpreters and what they skip, the
    claims the spec can test with their power, and the trial count last."""
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
    more = ""
    if settings:
        until = "each claim's comparisons are decided"
        if settings.target_ci is not None:
            until += f" and each median is known to ±{settings.target_ci:.1%}"
        more = (
            f"; adaptive: up to {len(planned.cells) * (settings.max - settings.min)} more, "
            f"until {until}"
        )
    print_claim_power(claim_power or [])
    say(
        f"{len(planned.cells)} cells, {len(planned.trials)} trials "
        f"({planned.warmup_count} warm-up + {measured} measured{more}); dry run: nothing "
        "was run or written"
    )
