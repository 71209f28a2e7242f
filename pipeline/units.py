"""Sizes for people: exact binary units (payloads) and approximate ones (memory)."""

from __future__ import annotations

import math

MISSING = "—"

BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]


def format_bytes(n: int) -> str:
    """Exact size in the largest binary unit dividing it: 1024 -> '1 KiB', 1500 -> '1500 B'."""
    n = int(n)
    unit = 0
    while n and n % 1024 == 0 and unit < len(BYTE_UNITS) - 1:
        n //= 1024
        unit += 1
    return f"{n} {BYTE_UNITS[unit]}"


def format_size(n_bytes: float | None) -> str:
    """An approximate size for reading, e.g. '48.3 MiB' (payloads use format_bytes)."""
    if n_bytes is None or math.isnan(n_bytes):
        return MISSING
    unit = 0
    while abs(n_bytes) >= 1024 and unit < len(BYTE_UNITS) - 1:
        n_bytes /= 1024
        unit += 1
    return f"{n_bytes:.0f} B" if unit == 0 else f"{n_bytes:.1f} {BYTE_UNITS[unit]}"
