"""Writing a report's files: the templates (autoescaped), atomic writes, values as text
and links that stay relative."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment as TemplateSet
from jinja2 import PackageLoader, select_autoescape

from ..metrics import is_missing
from ..units import MISSING


def cell_text(value: Any) -> str:
    """A scalar as text for a table cell (datetimes to the second, missing as a dash)."""
    if is_missing(value):
        return MISSING
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def relative_href(href: str) -> str:
    """Accept only links relative to the page, so reports never point at the network."""
    if re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|/)", href):
        raise ValueError(f"report links must be relative paths, got {href!r}")
    return href


def templates() -> TemplateSet:
    """The Jinja environment of the report templates, autoescaping everything."""
    return TemplateSet(
        loader=PackageLoader("pipeline.publishing", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def write(path: Path, text: str) -> Path:
    """Write text to path atomically, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic(path) as part:
        part.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write, renamed over ``path`` once written (a
    reader, or a run stopped mid-way, sees the old file or the new one, never half of
    one); removed when writing fails."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        yield part
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
