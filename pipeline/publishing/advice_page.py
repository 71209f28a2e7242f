"""The page of a ``pipeline advise`` study, next to its run's report: the answer, the
snippet, the findings and their evidence (speedup by workers per model, the break-even
item cost of processes, memory per worker), as one self-contained HTML file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..analysis.advice_answer import Answer
from .charts import DASHES, MARKERS, MIB
from .figures import finish
from .files import templates, write

PAGE = "advice.html"


def write_page(answer: Answer, out_dir: Path) -> Path:
    """Write out_dir/advice.html for ``answer`` and return its path."""
    charts = [
        chart
        for chart in (speedup_chart(answer), break_even_chart(answer), memory_chart(answer))
        if chart
    ]
    html = templates().get_template("advice.html.j2").render(answer=answer, charts=charts)
    return write(Path(out_dir) / PAGE, html)


def speedup_chart(answer: Answer) -> str:
    """Speedup over sequential against workers, a line per series, with intervals."""
    rows = [o for o in answer.options if o.kind != "sequential" and not math.isnan(o.speedup)]
    if not rows:
        return ""
    frame = pd.DataFrame([o.__dict__ for o in rows])
    figure = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = figure.subplots()
    for index, (series, group) in enumerate(frame.groupby("series", sort=True)):
        group = group.sort_values("workers")
        low = (group["speedup"] - group["low"]).clip(lower=0).fillna(0)
        high = (group["high"] - group["speedup"]).clip(lower=0).fillna(0)
        ax.errorbar(
            group["workers"],
            group["speedup"],
            yerr=[low, high],
            label=series,
            marker=MARKERS[index % len(MARKERS)],
            dashes=DASHES[index % len(DASHES)] or (None, None),
            capsize=3,
        )
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xscale("log", base=2)
    counts = sorted(set(frame["workers"]))
    ax.set_xticks(counts, [str(count) for count in counts])
    ax.minorticks_off()
    ax.set_xlabel("workers")
    ax.set_ylabel("speedup vs sequential (batch time)")
    ax.legend(fontsize="small")
    return finish(
        figure,
        "Speedup by workers",
        "Speedup of each configuration over sequential against its workers, 95% intervals",
    )


def break_even_chart(answer: Answer) -> str:
    """Batch time against the work of one item: sequential and the best process pool by
    the cost model, with the user's item cost and the break-even marked."""
    cost = answer.cost
    if not cost or cost.get("per_item_s") is None or cost.get("pool_s") is None:
        return ""
    items, item_s = int(cost["items"]), float(cost["item_s"])
    work = np.geomspace(item_s / 100, item_s * 100, 200)
    processes = cost["pool_s"] + items * (work + cost["per_item_s"]) / max(cost["parallel"], 1)
    figure = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = figure.subplots()
    ax.plot(work, items * work, label="sequential")
    ax.plot(work, processes, label=f"process pool, {cost['parallel']} at once (model)")
    ax.axvline(item_s, color="black", linestyle=":", label="your items")
    if cost.get("break_even_s"):
        ax.axvline(cost["break_even_s"], color="grey", linestyle="--", label="break-even")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("work per item (s)")
    ax.set_ylabel(f"batch time of {items} items (s)")
    ax.legend(fontsize="small")
    return finish(
        figure,
        "Break-even item cost of processes",
        "Batch time against the work of one item, sequential and process pool by the fitted "
        "cost model",
    )


def memory_chart(answer: Answer) -> str:
    """Peak PSS per worker above sequential, per configuration."""
    sizes = {
        o.label: o.memory_per_worker_bytes / MIB
        for o in answer.options
        if o.memory_per_worker_bytes is not None
    }
    if not sizes:
        return ""
    rows = list(sizes)
    frame = pd.DataFrame({"configuration": rows, "MiB": list(sizes.values())})
    figure = Figure(figsize=(7.0, 0.35 * len(rows) + 1.5), layout="constrained")
    ax = figure.subplots()
    sns.barplot(frame, x="MiB", y="configuration", ax=ax, color="steelblue")
    ax.set_xlabel("peak PSS per worker above sequential (MiB, medians)")
    ax.set_ylabel("")
    return finish(figure, "Memory per worker", "Peak PSS per worker above sequential")


def as_json(answer: Answer) -> dict[str, Any]:
    """The answer as JSON-able data (``pipeline advise --json``)."""
    import dataclasses

    return dataclasses.asdict(answer)
