"""Seaborn figures of a run's cell summary, rendered as self-contained inline SVG.

Figures are plain matplotlib ``Figure`` objects (never registered with pyplot), so no
backend is selected and nothing stays open after rendering.
"""

from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from ..analysis.scaling import scaling_fits, usl
from ..analysis.stats import numeric_summary
from ..cells import with_optional_keys
from ..metrics import METRICS
from ..units import BYTE_UNITS, format_bytes
from .figures import Drawn, Grid, id_prefix, render

__all__ = [
    "BYTE_UNITS",
    "Drawn",
    "NothingToDraw",
    "format_bytes",
    "memory_chart",
    "memory_figure",
    "metrics_chart",
    "metrics_figure",
    "render",
    "speedup_chart",
    "speedup_figure",
]


class NothingToDraw(ValueError):
    """The run has no data for this chart (any other error is a bug, and is raised)."""


IDEAL_LABEL = "ideal min(workers, usable cores)"
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
FACET_INCHES = (4.8, 3.4)
MIN_WIDTH_INCHES = 7.0


def speedup_chart(summary: pd.DataFrame, task: str, *, cores: float) -> str:
    """Speedup vs workers of one task, a line per model, faceted by payload and interpreter."""
    return render(speedup_figure(summary, task, cores=cores), prefix=id_prefix(task))


def speedup_figure(summary: pd.DataFrame, task: str, *, cores: float) -> Drawn:
    """The speedup chart's figure (see speedup_chart)."""
    cells = numeric_summary(summary[summary["task"] == task])
    if cells.empty:
        raise NothingToDraw(f"the summary has no cells for task {task!r}")
    payloads = sorted(int(payload) for payload in cells["payload_bytes"].unique())
    interpreters = list(dict.fromkeys(cells["interpreter"]))
    models = list(dict.fromkeys(cells["model"]))
    width = max(FACET_INCHES[0] * len(payloads), MIN_WIDTH_INCHES)
    styles = model_styles(models)
    ideal = cells.groupby("workers")["ideal_speedup"].max()
    cpu_bound = bool(ideal.notna().any())  # the ideal line is drawn for CPU-bound tasks only
    handles = _legend_handles(styles, cores, ideal=cpu_bound)
    grid = Grid(
        len(interpreters),
        len(payloads),
        width,
        titles=len(payloads) > 1 or len(interpreters) > 1,
        legend_labels=[str(handle.get_label()) for handle in handles],
        most_legend_columns=3 if len(payloads) == 1 else 4,
    )
    figure, axes = grid.figure(FACET_INCHES[1], sharey=True)
    highest = cells[["speedup", "speedup_ci_high", "ideal_speedup"]].max().max()
    top = 1.08 * float(highest) if pd.notna(highest) else 1.0
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
    grid.legend(figure, handles)
    ideal_text = f"the dashed line is the {IDEAL_LABEL} and " if cpu_bound else ""
    description = (
        f"{title}: one line per model ({', '.join(models)}), shaded bands are 95% "
        "confidence intervals, thin dotted curves the Universal Scalability Law fitted to a "
        "model with three or more worker counts (a diamond at its predicted peak), "
        f"{ideal_text}the dotted vertical line marks {cores:g} usable cores."
    )
    return Drawn(figure, title, description)


def model_styles(models: list[str]) -> dict[str, dict[str, Any]]:
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
    cores: float,
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
        rows = rows.sort_values("workers")
        ax.fill_between(
            rows["workers"],
            rows["speedup_ci_low"],
            rows["speedup_ci_high"],
            color=styles[str(model)]["color"],
            alpha=0.18,
            linewidth=0,
        )
    _draw_usl(ax, measured, styles)
    if ideal.notna().any():
        ax.plot(ideal.index, ideal.to_numpy(), color="black", linestyle="--", linewidth=1)
    ax.axvline(cores, color="grey", linestyle=":", linewidth=1.2)
    _style_axes(ax, sorted({*(float(w) for w in ideal.index), float(cores)}))


def _draw_usl(ax: Axes, measured: pd.DataFrame, styles: dict[str, dict[str, Any]]) -> None:
    """Each model's Universal Scalability Law fit (three or more worker counts) as a thin
    dotted curve, with a diamond at its predicted peak when that lies within the workers
    measured (a peak beyond them is in the report's table, not extrapolated here)."""
    if measured.empty:
        return
    measured = with_optional_keys(measured)
    fits = scaling_fits(measured)
    for fit in fits.dropna(subset=["usl_sigma"]).to_dict("records"):
        rows = measured[measured["model"].eq(fit["model"])]
        low, high = float(rows["workers"].min()), float(rows["workers"].max())
        n = np.geomspace(low, high, 50)
        color = styles[str(fit["model"])]["color"]
        ax.plot(n, usl(n, fit["usl_sigma"], fit["usl_kappa"]), color=color, linestyle=":", lw=1)
        peak = fit["usl_peak_workers"]
        if not np.isnan(peak) and low <= peak <= high:
            top = float(usl([peak], fit["usl_sigma"], fit["usl_kappa"])[0])
            ax.plot([peak], [top], marker="D", color=color, markersize=5)


def _style_axes(ax: Axes, ticks: list[float]) -> None:
    """Log2 worker axis with a tick per worker count, labels and a light grid."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{tick:g}" for tick in ticks])
    ax.set_xlabel("workers")
    ax.set_ylabel(METRICS["speedup"].label)
    # 1.2e-4 s as 1.2 under a shared "1e-4": tick labels stay short enough for Grid.LEFT
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
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


def _legend_handles(
    styles: dict[str, dict[str, Any]], cores: float, *, ideal: bool = True
) -> list[Line2D]:
    """One legend entry per model plus the ideal (CPU-bound tasks) and core-count lines."""
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
    if ideal:
        handles.append(
            Line2D([], [], color="black", linestyle="--", linewidth=1, label=IDEAL_LABEL)
        )
    handles.append(Line2D([], [], color="grey", linestyle=":", label=f"{cores:g} usable cores"))
    return handles


# -- more figures ------------------------------------------------------------------------------
MIB = 2**20


def metrics_chart(summary: pd.DataFrame, task: str, *, cores: float) -> str:
    """Median wall time, efficiency and CPU utilisation vs workers, one line per model."""
    return render(metrics_figure(summary, task, cores=cores))


def metrics_figure(summary: pd.DataFrame, task: str, *, cores: float) -> Drawn:
    """The metrics chart's figure (see metrics_chart)."""
    panels = [
        (column, METRICS[column].axis_label)
        for column in ("median_wall_s", "efficiency", "cpu_utilisation")
    ]
    cells = numeric_summary(summary[summary["task"] == task])
    return _panels_by_workers(
        cells,
        panels,
        f"Wall time, efficiency and CPU use vs workers for task {task}",
        cores=cores,
    )


def memory_chart(summary: pd.DataFrame, task: str, *, cores: float) -> str:
    """Peak USS and RSS of the process tree per worker vs workers, one line per model."""
    return render(memory_figure(summary, task, cores=cores))


def memory_figure(summary: pd.DataFrame, task: str, *, cores: float) -> Drawn:
    """The memory chart's figure (see memory_chart)."""
    cells = numeric_summary(summary[summary["task"] == task])
    workers = cells["workers"].where(cells["model"].ne("sequential"), 1).clip(lower=1)
    cells = cells.assign(
        uss_per_worker=cells["median_peak_uss_bytes"] / workers / MIB,
        rss_per_worker=cells["median_peak_rss_bytes"] / workers / MIB,
    )
    panels = [
        ("uss_per_worker", "peak USS per worker (MiB)"),
        ("rss_per_worker", "peak RSS per worker (MiB)"),
    ]
    return _panels_by_workers(cells, panels, f"Memory per worker for task {task}", cores=cores)


def _panels_by_workers(
    cells: pd.DataFrame, panels: list[tuple[str, str]], title: str, *, cores: float
) -> Drawn:
    """One panel per metric (columns) and per payload (rows), a line per model."""
    if cells.empty:
        raise NothingToDraw(f"no cells for {title!r}")
    payloads = sorted(int(payload) for payload in cells["payload_bytes"].unique())
    models = list(dict.fromkeys(cells["model"]))
    styles = model_styles(models)
    handles = _legend_handles(styles, cores)[:-2]
    handles.append(Line2D([], [], color="grey", linestyle=":", label=f"{cores} cores"))
    grid = Grid(
        len(payloads),
        len(panels),
        max(MIN_WIDTH_INCHES, 3.6 * len(panels)),
        titles=len(payloads) > 1,
        legend_labels=[str(handle.get_label()) for handle in handles],
    )
    figure, axes = grid.figure(3.0)
    ticks = sorted({*(float(w) for w in cells["workers"].unique()), float(cores)})
    for (row, payload), (column, (metric, label)) in product(
        enumerate(payloads), enumerate(panels)
    ):
        ax = axes[row][column]
        facet = cells[cells["payload_bytes"].eq(payload) & cells[metric].notna()]
        draw_lines(ax, facet, metric, styles)
        ax.axvline(cores, color="grey", linestyle=":", linewidth=1.2)
        _style_axes(ax, ticks)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        if len(payloads) > 1:
            ax.set_title(f"payload {format_bytes(payload)}", parse_math=False)
    figure.suptitle(title, parse_math=False)
    grid.legend(figure, handles)
    names = ", ".join(label for _, label in panels)
    description = f"{title}: {names}; one line per model ({', '.join(models)})."
    return Drawn(figure, title, description)


def draw_lines(
    ax: Axes,
    facet: pd.DataFrame,
    metric: str,
    styles: dict[str, dict[str, Any]],
    *,
    x: str = "workers",
    series: str = "model",
    legend: bool = False,
) -> None:
    """A line per series (hue and style both by it, so greyscale still tells them apart)."""
    if facet.empty:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
        return
    present = [name for name in styles if name in set(facet[series])]
    sns.lineplot(
        data=facet,
        x=x,
        y=metric,
        hue=series,
        style=series,
        hue_order=present,
        style_order=present,
        palette={name: styles[name]["color"] for name in present},
        markers={name: styles[name]["marker"] for name in present},
        dashes={name: styles[name]["dashes"] for name in present},
        errorbar=None,
        legend="auto" if legend else False,
        ax=ax,
    )
