"""A run's data beside its page: trials.csv and summary.csv (every column, as in the
views), summary.md (the Markdown digest) and verdicts.json (read back for the index)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from .files import atomic, write


def write_data_files(
    out_dir: Path,
    trials: pd.DataFrame,
    summary: pd.DataFrame,
    digest: str,
    verdicts: list[Any],
) -> None:
    """trials.csv and summary.csv (every column, as in the views), summary.md, and
    verdicts.json (for the index of runs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic(out_dir / "trials.csv") as part:
        trials.to_csv(part, index=False)
    with atomic(out_dir / "summary.csv") as part:
        summary.to_csv(part, index=False)
    write(out_dir / "summary.md", digest)
    write(
        out_dir / VERDICTS_FILE,
        json.dumps([dataclasses.asdict(verdict) for verdict in verdicts], indent=1),
    )


VERDICTS_FILE = "verdicts.json"


def read_verdicts(out_dir: Path) -> list[dict[str, str]]:
    """The verdicts of a built report, from its verdicts.json ([] without one): claim,
    title, verdict and headline of each, for the badges of the index of runs."""
    try:
        found = json.loads((out_dir / VERDICTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [
        {
            "claim": str(v.get("claim", "")),
            "title": str(v.get("title") or v.get("statement") or v.get("claim", "")),
            "verdict": str(v.get("verdict", "")),
            "headline": str(v.get("headline") or v.get("summary") or ""),
        }
        for v in found
        if isinstance(v, dict)
    ]
