"""Sizes for people: exact binary units (payloads) and approximate ones (memory); kernel
CPU lists ("0,2-3") read and written."""

from __future__ import annotations

import math
from collections.abc import Iterable

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


def parse_cpu_list(text: str) -> set[int]:
    """CPU ids from a kernel CPU list such as ``"0,2-3"`` (ValueError if malformed)."""
    text = text.strip(" \t\n\x00")
    cpus: set[int] = set()
    if text in ("", "(null)"):  # nohz_full reads " (null)" when unused
        return cpus
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def format_cpu_list(cpus: Iterable[int]) -> str:
    """A compact CPU list: ``{0, 1}`` -> ``"0-1"``, ``{0, 2, 3, 5}`` -> ``"0,2-3,5"``."""
    ranges: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
