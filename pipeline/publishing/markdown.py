"""The Markdown digest of a run, fit for a pull request or a README."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..analysis.headlines import task_headlines
from ..analysis.inference import run_rule
from ..analysis.stats import numeric_summary
from .files import cell_text

# what every ratio beside an interval is, for the digest (summary.csv's speedup too)
ESTIMAND_NOTE = (
    "Ratios and speedups are ratios of the geometric means of trial times, on the rounds "
    "both cells ran (the estimate each interval is about); medians are descriptive."
)


def markdown_digest(
    run: dict[str, Any],
    environment: dict[str, Any],
    summary: pd.DataFrame,
    verdicts: list[Any],
    trials: pd.DataFrame | None = None,
) -> str:
    """A Markdown digest of a run, fit for a pull request or a README: what was measured
    where, the verdicts, and the headline of each task. Text from the spec or the
    environment is escaped for Markdown tables."""
    lines = [
        f"# Run {_md(run.get('name'))} (#{run.get('id')})",
        "",
        f"{_md(environment.get('cpu_model'))}, {environment.get('cpu_physical')} physical "
        f"cores, Python {_md(environment.get('python_version'))} on "
        f"{_md(environment.get('os'))}; {run.get('trial_count')} measured trials, "
        f"started {cell_text(run.get('started_at'))}.",
        *(
            ["", f"Interpreters: {_md(environment['interpreters'])}."]
            if environment.get("interpreters")
            else []
        ),
        "",
        "## Verdicts on the explainer's claims",
        "",
        "| verdict | claim | what the run shows |",
        "| --- | --- | --- |",
        *(f"| {v.verdict} | {_md(v.statement)} | {_md(v.summary)} |" for v in verdicts),
        "",
        ESTIMAND_NOTE,
        "",
        "## Headlines",
        "",
        *(
            f"- {_md(line)}"
            for line in task_headlines(numeric_summary(summary), trials, run_rule(run)).values()
        ),
        "",
    ]
    return "\n".join(lines)


def _md(value: Any) -> str:
    """Text for a Markdown table cell: pipes and line breaks escaped, HTML neutralised."""
    text = "" if value is None else str(value)
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", " ")
    )
