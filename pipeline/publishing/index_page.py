"""The index of runs: reports/index.html, newest first, each run with its verdicts'
badges."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..metrics import is_missing
from ..status import Verdict
from .files import cell_text, relative_href, templates, write

VERDICT_SLUGS = {verdict.value: verdict.slug for verdict in Verdict}  # CSS classes
EXPLORER_FILE = "explorer.html"  # beside index.html: every run on one interactive page


def write_index(runs: list[dict[str, Any]], reports_dir: Path) -> Path:
    """Write reports_dir/index.html listing runs newest first and return its path."""
    ordered = sorted(runs, key=_run_order, reverse=True)
    rows = [
        {
            **run,
            "started_at": cell_text(run.get("started_at")),
            "report_href": relative_href(str(run["report_href"])),
            "verdicts": [
                {**v, "slug": VERDICT_SLUGS.get(v["verdict"], "none")}
                for v in run.get("verdicts") or []
            ],
        }
        for run in ordered
    ]
    explorer = (Path(reports_dir) / EXPLORER_FILE).exists()  # written by pipeline publish
    html = (
        templates()
        .get_template("index.html.j2")
        .render(runs=rows, explorer_href=EXPLORER_FILE if explorer else None)
    )
    return write(Path(reports_dir) / "index.html", html)


def _run_order(run: Mapping[str, Any]) -> tuple[str, int]:
    """Sort key of a run: start time, then id (runs never started sort oldest)."""
    started = run.get("started_at")
    started_text = "" if is_missing(started) else cell_text(started)
    run_id = run.get("id")
    return started_text, run_id if isinstance(run_id, int) else 0
