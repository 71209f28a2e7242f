"""The metrics registry and the formatting every person-facing table uses."""

from __future__ import annotations

import math

import pytest
from sqlmodel import SQLModel

from pipeline import cells, metrics
from pipeline.analysis import stats
from pipeline.metrics import METRICS, SUMMARY_METRICS, Unit, format_column, format_value
from pipeline.storage import schema
from pipeline.units import format_bytes, format_size


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2.0, "2 s"), (1.23456, "1.23 s"), (0.0123, "12.3 ms"), (4.5e-5, "45 µs"), (0.0, "0 µs")],
)
def test_format_seconds(seconds, text):
    assert metrics.format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("n_bytes", "text"),
    [(512, "512 B"), (1536, "1.5 KiB"), (50 * 1024**2, "50.0 MiB"), (math.nan, "—")],
)
def test_format_size(n_bytes, text):
    assert format_size(n_bytes) == text


@pytest.mark.parametrize(
    ("n_bytes", "label"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1024, "1 KiB"),
        (1500, "1500 B"),
        (1536, "1536 B"),
        (64 * 1024, "64 KiB"),
        (1048576, "1 MiB"),
        (3 * 1024**3, "3 GiB"),
    ],
)
def test_format_bytes(n_bytes, label):
    assert format_bytes(n_bytes) == label


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1.2345, Unit.RATIO, "1.23×"),
        (0.123, Unit.SHARE, "12.3%"),
        (0.05, Unit.CHANGE, "+5.0%"),
        (-0.25, Unit.CHANGE, "-25.0%"),
        (65536, Unit.SIZE, "64 KiB"),
        (3 * 2**20, Unit.BYTES, "3.0 MiB"),
        (7.0, Unit.COUNT, "7"),
        (None, Unit.SECONDS, "—"),
        (math.nan, Unit.RATIO, "—"),
    ],
)
def test_format_value_by_unit(value, unit, text):
    assert format_value(value, unit) == text


def test_every_unit_has_a_formatter():
    assert set(metrics.FORMATTERS) == set(Unit)


def test_intervals_of_ratios_leave_the_sign_to_the_value():
    assert metrics.format_with_interval(1.95, 1.9, 2.01, Unit.RATIO) == "1.95× [1.90, 2.01]"
    assert metrics.format_with_interval(1.95, math.nan, 2.0, Unit.RATIO) == "1.95×"
    assert metrics.format_interval(0.1, 0.2, Unit.SECONDS) == "[100 ms, 200 ms]"


def test_known_columns_are_formatted_and_others_printed_as_they_are():
    assert format_column("median_wall_s", [0.5, None]) == ["500 ms", "—"]
    assert format_column("model", ["threads", None]) == ["threads", "—"]


def test_the_summary_view_stats_and_table_follow_the_registry():
    """cell_summary lists the registry's summary metrics in order; cell_stats stores each;
    stats computes each."""
    view = schema.VIEWS["cell_summary"]
    positions = [view.index(f"s.{column}") for column in SUMMARY_METRICS]
    assert positions == sorted(positions)
    stored = set(SQLModel.metadata.tables["cell_stats"].columns.keys())
    assert set(SUMMARY_METRICS) <= stored
    assert ["cell_id", *cells.CELL_KEYS, *SUMMARY_METRICS, "warnings"] == stats.SUMMARY_COLUMNS


def test_the_trial_view_columns_that_are_numbers_are_metrics():
    view = schema.VIEWS["trial_results"]
    for column in ("wall_s", "startup_s", "peak_rss_bytes", "latency_p99_s", "cpu_utilisation"):
        assert f"t.{column}" in view
        assert column in METRICS


def test_cell_labels_are_written_one_way():
    assert (
        cells.label("sync", "lock=with", "threads", 2, 65536)
        == "sync (lock=with) threads ×2, 64 KiB"
    )
    assert cells.label("cpu_pure", None, "processes", 4) == "cpu_pure processes ×4"
    assert cells.variant_text(math.nan) == cells.variant_text(None) == ""
    row = {
        "task": "io_sleep",
        "variant": "",
        "model": "asyncio",
        "workers": 8,
        "payload_bytes": 1024,
    }
    assert cells.row_label(row) == "io_sleep asyncio ×8, 1 KiB"
    assert cells.sql_columns("c").startswith("c.task, c.variant, c.model")
