"""The run-wide figures of a report: fastest model per task and worker count, start-up and
shutdown, transfer cost, and interpreters side by side (each task's own figures are in
:mod:`pipeline.publishing.charts`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analysis.stats import SLOW_SPEED, numeric_summary
from ..cells import SERIES_KEYS, model_label, row_label, variant_text, with_optional_keys
from . import charts, figures
from .charts import NothingToDraw


def startup_chart(summary: pd.DataFrame) -> str:
    """Median start-up and shutdown cost per model (and start method) and worker count,
    over every task of the run."""
    cells = numeric_summary(summary)
    pools = cells[cells["model"].ne("sequential")]
    if pools.empty:
        raise NothingToDraw("no pool cells: nothing starts up")
    by_model = pools.groupby(["model", "workers"], sort=False)[
        ["median_startup_s", "median_shutdown_s"]
    ].median()
    data = by_model.reset_index().assign(
        startup_ms=lambda frame: frame["median_startup_s"] * 1e3,
        shutdown_ms=lambda frame: frame["median_shutdown_s"] * 1e3,
    )
    worker_counts = sorted(int(w) for w in data["workers"].unique())
    figure = Figure(figsize=(charts.MIN_WIDTH_INCHES + 2, 3.8), layout="constrained")
    axes = figure.subplots(1, 2, squeeze=False)[0]
    for ax, metric, label in (
        (axes[0], "startup_ms", "start-up until every worker is ready (ms)"),
        (axes[1], "shutdown_ms", "shutdown (ms)"),
    ):
        _points(ax, data, x="model", y=metric, hue="workers", order=worker_counts, line=":")
        if (data[metric] > 0).all():  # a pool measured as instant (a fake one) stays linear
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=30)
        ax.grid(True, axis="y", linewidth=0.5, alpha=0.5)
    title = "Start-up and shutdown cost per model"
    description = (
        f"{title}: median over the run's tasks of the time from creating the pool until "
        "every worker is ready, and of shutting it down, per model and start method, one "
        "marker per worker count (log scale)."
    )
    return figures.finish(figure, title, description)


def transfer_chart(summary: pd.DataFrame) -> str:
    """Transfer cost per item vs payload, a line per model and transport (log-log)."""
    cells = numeric_summary(summary[summary["task"].eq("transfer")])
    cells = cells[cells["median_wall_s"].notna()]
    if cells.empty:
        raise NothingToDraw("no transfer cells with data")
    variant = cells["variant"].map(variant_text).str.replace("transport=", "", regex=False)
    label = [
        model_label(model, workers) + (f" ({transport})" if transport else "")
        for model, workers, transport in zip(cells["model"], cells["workers"], variant, strict=True)
    ]
    data = cells.assign(series=label, payload_mib=cells["payload_bytes"] / charts.MIB)
    series = list(dict.fromkeys(data["series"]))
    styles = charts.model_styles(series)
    figure = Figure(figsize=(charts.MIN_WIDTH_INCHES, 4.4), layout="constrained")
    ax = figure.subplots()
    charts.draw_lines(
        ax, data, "median_wall_s", styles, x="payload_mib", series="series", legend=True
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("payload per item (MiB)")
    ax.set_ylabel("median wall time of the trial (s)")
    ax.grid(True, linewidth=0.5, alpha=0.5)
    legend = ax.get_legend()
    if legend is not None:
        legend.set_title("model (transport)")
    title = "Cost of moving data to workers and back"
    description = (
        f"{title}: median wall time of the transfer task against the payload per item, "
        f"log-log, one line per model and transport ({', '.join(series)})."
    )
    return figures.finish(figure, title, description)


def best_models(summary: pd.DataFrame) -> pd.DataFrame:
    """For each task and worker count: the fastest model by median wall time, the
    runner-up, and the margin (runner-up's median / best's - 1; NaN when alone)."""
    cells = numeric_summary(summary)
    cells = cells[cells["median_wall_s"].notna() & cells["model"].ne("sequential")]
    rows = []
    for (task, workers), group in cells.groupby(["task", "workers"], sort=False):
        ranked = group.groupby("model")["median_wall_s"].min().sort_values()
        alone = len(ranked) < 2
        rows.append(
            {
                "task": task,
                "workers": workers,
                "best": str(ranked.index[0]),
                "runner_up": None if alone else str(ranked.index[1]),
                "margin": float("nan") if alone else ranked.iloc[1] / ranked.iloc[0] - 1,
            }
        )
    return pd.DataFrame(rows, columns=["task", "workers", "best", "runner_up", "margin"])


def best_model_heatmap(summary: pd.DataFrame) -> str:
    """For each task and worker count, the fastest model (by median wall time) and its
    margin over the runner-up; the colour is the margin."""
    table = best_models(summary)
    if table.empty:
        raise NothingToDraw("no pool cells with data")
    table = table.assign(
        text=[
            best if np.isnan(margin) else f"{best}\n+{margin:.0%}"
            for best, margin in zip(table["best"], table["margin"], strict=True)
        ],
        margin=table["margin"] * 100,
    )
    # a square with one pool model has no margin: drawn as 0 (its text names the model)
    margins = table.pivot(index="task", columns="workers", values="margin").fillna(0.0)
    texts = table.pivot(index="task", columns="workers", values="text").reindex_like(margins)
    figure = Figure(
        figsize=(
            max(charts.MIN_WIDTH_INCHES, 1.6 * margins.shape[1] + 3),
            0.62 * len(margins) + 1.8,
        ),
        layout="constrained",
    )
    ax = figure.subplots()
    sns.heatmap(
        margins,
        annot=texts.fillna("").to_numpy(),
        fmt="",
        cmap="Greys",
        vmin=0,
        vmax=max(float(margins.to_numpy().max()), 1.0),
        cbar_kws={"label": "margin over the runner-up (%)"},
        linewidths=0.5,
        annot_kws={"fontsize": 7},
        ax=ax,
    )
    ax.set_xlabel("workers")
    ax.set_ylabel("")
    title = "Fastest model per task and worker count"
    description = (
        f"{title}: each square names the model with the lowest median wall time and how much "
        "slower the runner-up was; darker squares mean a larger margin."
    )
    return figures.finish(figure, title, description)


def _points(
    ax: Axes, data: pd.DataFrame, *, x: str, y: str, hue: str, order: list[Any], line: str
) -> None:
    """Points per category, a marker (and colour) per ``hue`` value."""
    sns.pointplot(
        data=data,
        x=x,
        y=y,
        hue=hue,
        hue_order=order,
        markers=[charts.MARKERS[i % len(charts.MARKERS)] for i in range(len(order))],
        linestyles=[line for _ in order],
        palette="colorblind",
        errorbar=None,
        ax=ax,
    )


def interpreter_chart(summary: pd.DataFrame) -> str:
    """Speedup per task and model under each interpreter (runs with several)."""
    cells = numeric_summary(summary)
    cells = cells[cells["speedup"].notna() & cells["model"].ne("sequential")]
    interpreters = list(dict.fromkeys(cells["interpreter"]))
    if len(interpreters) < 2:
        raise NothingToDraw("one interpreter: nothing to compare")
    keys = list(SERIES_KEYS)
    cells = with_optional_keys(cells)
    top = cells.loc[cells.groupby(keys, dropna=False)["workers"].idxmax()]
    payloads = top["payload_bytes"].nunique() > 1
    data = top.assign(cell=[row_label(cell, payload=payloads) for _, cell in top.iterrows()])
    figure = Figure(
        figsize=(charts.MIN_WIDTH_INCHES + 2, 0.35 * data["cell"].nunique() + 2),
        layout="constrained",
    )
    ax = figure.subplots()
    _points(ax, data, x="speedup", y="cell", hue="interpreter", order=interpreters, line="none")
    sns.move_legend(
        ax, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(interpreters), title=None
    )
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_xlabel("speedup vs sequential at the most workers")
    ax.set_ylabel("")
    title = "Interpreters compared"
    description = (
        f"{title}: speedup of each task, model and payload at its largest worker count under each "
        f"interpreter ({', '.join(interpreters)})."
    )
    return figures.finish(figure, title, description)


def host_chart(summary: pd.DataFrame, host_cores: dict[str, float]) -> str:
    """Hosts compared (hosts: each): speedup vs workers, one line per host, a panel per
    task and model, each host's usable cores marked by a dotted line in its colour."""
    cells = numeric_summary(summary)
    if "host" not in cells:
        raise NothingToDraw("no host axis")
    cells = cells[cells["speedup"].notna() & cells["model"].ne("sequential")]
    cells = cells[cells["host"].fillna("").ne("")]
    hosts = sorted(cells["host"].unique())
    if len(hosts) < 2:
        raise NothingToDraw("fewer than two hosts: nothing to compare")
    cells = cells.assign(
        panel=[
            f"{row['task']}{f' ({v})' if (v := variant_text(row.get('variant'))) else ''}, "
            f"{row['model']}"
            for _, row in cells.iterrows()
        ]
    )
    panels = list(dict.fromkeys(cells["panel"]))
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(3.6 * columns + 1, 2.9 * rows + 0.8), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    colours = dict(zip(hosts, sns.color_palette("colorblind", len(hosts)), strict=True))
    for ax, panel in zip(axes, panels, strict=False):
        data = (
            cells[cells["panel"].eq(panel)]
            .groupby(["host", "workers"], as_index=False)["speedup"]
            .median()
        )
        for host in hosts:
            line = data[data["host"].eq(host)].sort_values("workers")
            ax.plot(line["workers"], line["speedup"], marker="o", color=colours[host], label=host)
            if host in host_cores:
                ax.axvline(host_cores[host], color=colours[host], linestyle=":", linewidth=1)
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("workers")
        ax.set_ylabel("speedup vs sequential")
        ax.grid(True, linewidth=0.5, alpha=0.5)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncol=len(hosts))
    title = "Hosts compared"
    cores_text = ", ".join(f"{h}: {host_cores[h]:g}" for h in hosts if h in host_cores)
    description = (
        f"{title}: median speedup over sequential against worker count on each host "
        f"({', '.join(hosts)}), a panel per task and model; dotted lines mark each host's "
        f"usable cores ({cores_text or 'unknown'})."
    )
    return figures.finish(figure, title, description)


def drift_chart(trials: pd.DataFrame) -> str:
    """The machine's speed over the run: before each trial, the reference loop's usual time
    (the run's median) over its time then, so 0.8 means 20% slower; a line per host."""
    needed = {"reference_s", "started_at"}
    if trials.empty or not needed <= set(trials.columns):
        raise NothingToDraw("no reference loop timings")
    data = trials[trials["reference_s"].notna() & (trials["reference_s"] > 0)]
    if len(data) < 2:
        raise NothingToDraw("too few reference loop timings")
    host = data["trial_host"].fillna("") if "trial_host" in data else pd.Series("", data.index)
    started = pd.to_datetime(data["started_at"], utc=True, format="mixed")
    usual = data["reference_s"].groupby(host).transform("median")
    frame = pd.DataFrame(
        {
            "minutes": (started - started.min()).dt.total_seconds() / 60,
            "speed": usual / data["reference_s"],
            "host": host.replace("", "this machine"),
        }
    ).sort_values("minutes")
    figure = Figure(figsize=(charts.MIN_WIDTH_INCHES + 2, 3.4), layout="constrained")
    ax = figure.subplots()
    hosts = list(dict.fromkeys(frame["host"]))
    colours = dict(zip(hosts, sns.color_palette("colorblind", len(hosts)), strict=True))
    for name in hosts:
        line = frame[frame["host"].eq(name)]
        ax.scatter(line["minutes"], line["speed"], s=6, alpha=0.35, color=colours[name])
        window = max(5, len(line) // 15)
        smooth = line["speed"].rolling(window, center=True, min_periods=1).median()
        ax.plot(line["minutes"], smooth, color=colours[name], label=f"{name} (rolling median)")
    ax.axhline(1, color="black", linewidth=0.8)
    ax.axhspan(0, SLOW_SPEED, color="tab:red", alpha=0.08, label=f"slower than {SLOW_SPEED:g}")
    low = min(float(frame["speed"].min()), SLOW_SPEED) - 0.05
    high = max(float(frame["speed"].max()), 1.0) + 0.05
    ax.set_ylim(low, high)
    ax.set_xlabel("minutes since the first trial")
    ax.set_ylabel("machine speed (1: the run's median)")
    ax.grid(True, linewidth=0.5, alpha=0.5)
    ax.legend(loc="upper right", ncol=len(hosts) + 1, fontsize=8, framealpha=0.9)
    title = "Machine speed during the run"
    description = (
        f"{title}: before each trial the orchestrator times a fixed pure-Python loop; each "
        "point is that loop's median time over the run divided by its time then (0.8: the "
        "machine ran 20% slower), with a rolling median line. Cells measured while it sat "
        f"below {SLOW_SPEED:g} are named in their warnings."
    )
    return figures.finish(figure, title, description)
