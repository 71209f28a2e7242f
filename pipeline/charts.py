"""Seaborn figures of a run's cell summary, rendered as self-contained inline SVG.

Figures are plain matplotlib ``Figure`` objects (never registered with pyplot), so no
backend is selected and nothing stays open after rendering.
"""

from __future__ import annotations

import hashlib
import io
import re
from html import escape
from itertools import product
from typing import Any

import matplotlib as mpl
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from .stats import numeric_summary
from .units import BYTE_UNITS, format_bytes

__all__ = ["BYTE_UNITS", "format_bytes", "speedup_chart"]

IDEAL_LABEL = "ideal min(workers, cores)"
# Marker and dash per model, so lines stay distinguishable in greyscale.
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
DASHES: list[tuple[float, ...]] = [
    (),
    (5.0, 2.0),
    (1.5, 1.5),
    (6.0, 2.0, 1.5, 2.0),
    (3.0, 1.0),
    (6.0, 1.5, 1.5, 1.5, 1.5, 1.5),
    (1.0, 3.0),
    (8.0, 3.0),
]
SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
FACET_INCHES = (4.8, 3.4)
MIN_WIDTH_INCHES = 7.0


def speedup_chart(summary: pd.DataFrame, task: str, *, cores: int) -> str:
    """Speedup vs workers of one task, a line per model, faceted by payload and interpreter."""
    cells = numeric_summary(summary[summary["task"] == task])
    if cells.empty:
        raise ValueError(f"the summary has no cells for task {task!r}")
    payloads = sorted(int(payload) for payload in cells["payload_bytes"].unique())
    interpreters = list(dict.fromkeys(cells["interpreter"]))
    models = list(dict.fromkeys(cells["model"]))
    width = max(FACET_INCHES[0] * len(payloads), MIN_WIDTH_INCHES)
    figure = Figure(
        figsize=(width, FACET_INCHES[1] * len(interpreters) + 0.8), layout="constrained"
    )
    axes = figure.subplots(len(interpreters), len(payloads), sharey=True, squeeze=False)
    styles = _model_styles(models)
    ideal = cells.groupby("workers")["ideal_speedup"].max()
    top = 1.08 * float(cells[["speedup", "speedup_ci_high", "ideal_speedup"]].max().max())
    for (row, interpreter), (column, payload) in product(
        enumerate(interpreters), enumerate(payloads)
    ):
        facet = cells[(cells["interpreter"] == interpreter) & (cells["payload_bytes"] == payload)]
        ax = axes[row][column]
        _draw_facet(ax, facet, styles, ideal, cores)
        ax.set_ylim(0, top)
        ax.set_title(_facet_title(payloads, interpreters, payload, interpreter), parse_math=False)
    title = f"Speedup vs workers for task {task}"
    figure.suptitle(title, parse_math=False)
    handles = _legend_handles(styles, cores)
    figure.legend(handles=handles, loc="outside lower center", ncols=3 if len(payloads) == 1 else 4)
    description = (
        f"{title}: one line per model ({', '.join(models)}), vertical bars are 95% "
        f"confidence intervals, the dashed line is the {IDEAL_LABEL} and the dotted line "
        f"marks {cores} cores."
    )
    return _to_svg(figure, title, description, prefix=_id_prefix(task))


def _model_styles(models: list[str]) -> dict[str, dict[str, Any]]:
    """Colour, marker and dash pattern of each model, stable across facets."""
    palette = sns.color_palette("colorblind", len(models))
    return {
        model: {
            "color": palette[index],
            "marker": MARKERS[index % len(MARKERS)],
            "dashes": DASHES[index % len(DASHES)],
        }
        for index, model in enumerate(models)
    }


def _draw_facet(
    ax: Axes,
    facet: pd.DataFrame,
    styles: dict[str, dict[str, Any]],
    ideal: pd.Series,
    cores: int,
) -> None:
    """Lines and interval bars per model, the ideal line and the core count on one axes."""
    measured = facet[facet["speedup"].notna()]
    if not measured.empty:
        sns.lineplot(
            data=measured,
            x="workers",
            y="speedup",
            hue="model",
            style="model",
            hue_order=list(styles),
            style_order=list(styles),
            palette={model: style["color"] for model, style in styles.items()},
            markers={model: style["marker"] for model, style in styles.items()},
            dashes={model: style["dashes"] for model, style in styles.items()},
            errorbar=None,
            legend=False,
            ax=ax,
        )
    intervals = measured.dropna(subset=["speedup_ci_low", "speedup_ci_high"])
    for model, rows in intervals.groupby("model", sort=False):
        ax.vlines(
            rows["workers"],
            rows["speedup_ci_low"],
            rows["speedup_ci_high"],
            colors=[styles[str(model)]["color"]],
            linewidth=1.5,
        )
    ax.plot(ideal.index, ideal.to_numpy(), color="black", linestyle="--", linewidth=1)
    ax.axvline(cores, color="grey", linestyle=":", linewidth=1.2)
    _style_axes(ax, sorted({*ideal.index, cores}))


def _style_axes(ax: Axes, ticks: list[int]) -> None:
    """Log2 worker axis with a tick per worker count, labels and a light grid."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(tick) for tick in ticks])
    ax.set_xlabel("workers")
    ax.set_ylabel("speedup vs sequential")
    ax.grid(True, axis="y", linewidth=0.5, alpha=0.5)


def _facet_title(
    payloads: list[int], interpreters: list[str], payload: int, interpreter: str
) -> str:
    """Title naming what varies between facets."""
    parts = []
    if len(payloads) > 1:
        parts.append(f"payload {format_bytes(payload)}")
    if len(interpreters) > 1:
        parts.append(f"interpreter {interpreter}")
    return ", ".join(parts)


def _legend_handles(styles: dict[str, dict[str, Any]], cores: int) -> list[Line2D]:
    """One legend entry per model plus the ideal and core-count lines."""
    handles = [
        Line2D(
            [],
            [],
            color=style["color"],
            marker=style["marker"],
            linestyle=(0, style["dashes"]) if style["dashes"] else "-",
            label=model,
        )
        for model, style in styles.items()
    ]
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1, label=IDEAL_LABEL))
    handles.append(Line2D([], [], color="grey", linestyle=":", label=f"{cores} cores"))
    return handles


def _id_prefix(task: str) -> str:
    """A prefix that keeps element ids unique when several charts share one HTML page."""
    return "chart-" + hashlib.sha256(task.encode()).hexdigest()[:10] + "-"


def _to_svg(figure: Figure, title: str, description: str, *, prefix: str) -> str:
    """Render to SVG markup without XML prologue, with a <title> and an aria-label."""
    buffer = io.StringIO()
    # Text as paths (no font files needed); a fixed salt makes ids reproducible.
    with mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "pipeline"}):
        figure.savefig(buffer, format="svg", metadata=SVG_METADATA)
    figure.clear()
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'(\bid="|href="#|url\(#)', lambda match: match.group(1) + prefix, svg)
    tag_end = svg.index(">")
    label = escape(description, quote=True)
    return (
        f'{svg[:tag_end]} role="img" aria-label="{label}">'
        f"<title>{escape(title)}</title>{svg[tag_end + 1 :]}"
    )
