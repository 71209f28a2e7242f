"""What identifies a cell, written once: the axis columns, the cells a speedup is measured
against, and a cell's name for people. Every layer uses these (it imports nothing of them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .units import format_bytes

if TYPE_CHECKING:
    import pandas as pd

# The columns that identify a cell within a run, in the matrix's order (docs/schema.md).
# ``host``: the cluster worker a cell ran on when a spec runs on each host ("" otherwise).
CELL_KEYS = ("task", "variant", "model", "workers", "payload_bytes", "interpreter", "host")
# The cell keys that are numbers (the others are text).
NUMERIC_KEYS = ("workers", "payload_bytes")
TEXT_KEYS = tuple(key for key in CELL_KEYS if key not in NUMERIC_KEYS)
# The model every speedup is measured against, and what a cell shares with that baseline.
BASELINE_MODEL = "sequential"
BASELINE_KEYS = tuple(key for key in CELL_KEYS if key not in ("model", "workers"))
# One line of a scaling chart or fit: a cell's keys but the worker count.
SERIES_KEYS = tuple(key for key in CELL_KEYS if key != "workers")


# Keys a frame may lack (hand-made, or from before they existed) or hold NULL in: "" then.
OPTIONAL_KEYS = ("variant", "host")


def with_optional_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every OPTIONAL_KEYS column present, NULL and NaN turned into ""."""
    return frame.assign(
        **{key: frame[key].map(variant_text) if key in frame else "" for key in OPTIONAL_KEYS}
    )


def variant_text(value: Any) -> str:
    """A stored variant as text: '' when the task sweeps no parameter (NULL, NaN or '')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def model_label(model: str, workers: Any, payload_bytes: Any = None) -> str:
    """A cell's name within its task: 'threads ×2', or 'threads ×2, 64 KiB' with a payload."""
    name = f"{model} ×{int(workers)}"
    return name if payload_bytes is None else f"{name}, {format_bytes(int(payload_bytes))}"


def label(
    task: str,
    variant: Any,
    model: str,
    workers: int,
    payload_bytes: int | None = None,
    host: Any = "",
) -> str:
    """A cell's name for people: 'sync (lock=with) threads ×2, 64 KiB' (no payload when
    ``payload_bytes`` is None), with ' on HOST' for a cell of one cluster host."""
    swept = variant_text(variant)
    where = variant_text(host)
    return (
        f"{task}{f' ({swept})' if swept else ''} {model_label(model, workers, payload_bytes)}"
        f"{f' on {where}' if where else ''}"
    )


def row_label(cell: Mapping[str, Any] | pd.Series[Any], *, payload: bool = True) -> str:
    """:func:`label` of a cell given as a row (a dict or a pandas Series)."""
    return label(
        cell["task"],
        cell.get("variant"),
        cell["model"],
        cell["workers"],
        cell["payload_bytes"] if payload else None,
        cell.get("host", ""),
    )


def sql_columns(alias: str) -> str:
    """The cell keys as a SQL select list of table ``alias``: 'c.task, c.variant, ...'."""
    return ", ".join(f"{alias}.{key}" for key in CELL_KEYS)
