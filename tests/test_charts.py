"""Tests of pipeline.charts: SVG output that is self-contained and inlinable."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from pipeline.publishing.charts import (
    IDEAL_LABEL,
    NothingToDraw,
    memory_chart,
    memory_figure,
    metrics_chart,
    metrics_figure,
    speedup_chart,
    speedup_figure,
)
from pipeline.publishing.overview import (
    best_model_heatmap,
    best_models,
    interpreter_chart,
    startup_chart,
    transfer_chart,
)

SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def summary_rows(task="cpu_pure", payloads=(1024,), interpreters=("python3",), cores=4):
    """A cell summary with a sequential baseline and two parallel models."""
    rows = []
    for interpreter in interpreters:
        for payload in payloads:
            rows.append(row(task, "sequential", 1, payload, interpreter, 1.0, cores))
            for model in ("threads", "processes-spawn"):
                for workers in (1, 2, 4, 8):
                    speedup = min(workers, cores) * 0.9
                    rows.append(row(task, model, workers, payload, interpreter, speedup, cores))
    return pd.DataFrame(rows)


def row(task, model, workers, payload, interpreter, speedup, cores):
    """One summary row with a ±10 % interval."""
    return {
        "task": task,
        "model": model,
        "workers": workers,
        "payload_bytes": payload,
        "interpreter": interpreter,
        "speedup": speedup,
        "speedup_ci_low": speedup * 0.9,
        "speedup_ci_high": speedup * 1.1,
        "ideal_speedup": 1 if model == "sequential" else min(workers, cores),
    }


def external_references(svg):
    """Attribute values and style text in the SVG that mention http(s) URLs."""
    root = ET.fromstring(svg)  # namespace declarations are not attributes once parsed
    found = [
        f"{element.tag} {name}={value}"
        for element in root.iter()
        for name, value in element.attrib.items()
        if re.search(r"https?:|^//", value)
    ]
    found += [
        element.text
        for element in root.iter(f"{SVG_NS}style")
        if element.text and re.search(r"https?:|url\(\s*['\"]?//|@import", element.text)
    ]
    return found


def test_chart_is_inline_svg_with_a_title():
    svg = speedup_chart(summary_rows(), "cpu_pure", cores=4)
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert "<!DOCTYPE" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("role") == "img"
    assert "cpu_pure" in root.get("aria-label", "")
    title = root.find(f"{SVG_NS}title")
    assert title is not None
    assert title.text == "Speedup vs workers for task cpu_pure"


def test_chart_has_no_external_references():
    svg = speedup_chart(summary_rows(), "cpu_pure", cores=4)
    assert external_references(svg) == []
    declarations = re.findall(r'([\w:-]+)="https?://[^"]*"', svg)
    assert declarations
    assert all(name.startswith("xmlns") for name in declarations)
    root = ET.fromstring(svg)
    links = [element.get(XLINK_HREF) or element.get("href") for element in root.iter()]
    assert all(link.startswith("#") for link in links if link)
    assert root.find(f".//{SVG_NS}image") is None


def test_chart_references_resolve_and_ids_differ_between_charts():
    summary = pd.concat([summary_rows("cpu_pure"), summary_rows("io_sleep")])
    first = speedup_chart(summary, "cpu_pure", cores=4)
    second = speedup_chart(summary, "io_sleep", cores=4)
    for svg in (first, second):
        ids = set(re.findall(r'\bid="([^"]+)"', svg))
        references = set(re.findall(r'(?:href="#|url\(#)([^")]+)', svg))
        assert references
        assert references <= ids
    first_ids = set(re.findall(r'\bid="([^"]+)"', first))
    assert first_ids.isdisjoint(re.findall(r'\bid="([^"]+)"', second))


def test_chart_labels_ideal_line_and_cores():
    svg = speedup_chart(summary_rows(), "cpu_pure", cores=4)
    assert IDEAL_LABEL == "ideal min(workers, usable cores)"
    assert IDEAL_LABEL in svg  # text is drawn as paths, with the text in a comment
    assert "4 usable cores" in svg


def test_no_ideal_line_where_the_task_is_not_cpu_bound():
    """I/O waits overlap whatever the cores: no ideal line, its legend entry, or its text."""
    rows = summary_rows("io_sleep").assign(ideal_speedup=float("nan"))
    svg = speedup_chart(rows, "io_sleep", cores=2)
    assert IDEAL_LABEL not in svg
    assert "2 usable cores" in svg
    assert "threads" in svg
    assert "processes-spawn" in svg


def test_chart_facets_by_payload_and_interpreter():
    summary = summary_rows(payloads=(1024, 1048576), interpreters=("python3", "python3.13t"))
    svg = speedup_chart(summary, "cpu_pure", cores=4)
    for title in ("payload 1 KiB", "payload 1 MiB", "interpreter python3.13t"):
        assert title in svg
    assert "payload" not in speedup_chart(summary_rows(), "cpu_pure", cores=4)


def test_chart_without_baseline_still_renders():
    summary = summary_rows()
    summary[["speedup", "speedup_ci_low", "speedup_ci_high"]] = math.nan
    assert speedup_chart(summary, "cpu_pure", cores=4).startswith("<svg")


def test_chart_escapes_task_names():
    svg = speedup_chart(summary_rows(task="a<b>&$x$"), "a<b>&$x$", cores=2)
    root = ET.fromstring(svg)
    assert root.find(f"{SVG_NS}title").text == "Speedup vs workers for task a<b>&$x$"


def test_chart_is_reproducible_and_leaves_no_open_figures():
    open_before = plt.get_fignums()
    first = speedup_chart(summary_rows(), "cpu_pure", cores=4)
    assert first == speedup_chart(summary_rows(), "cpu_pure", cores=4)
    assert plt.get_fignums() == open_before


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="no cells for task 'nope'"):
        speedup_chart(summary_rows(), "nope", cores=4)


def test_chart_accepts_a_summary_read_back_from_sql():
    summary = summary_rows()
    summary[["speedup", "speedup_ci_low", "speedup_ci_high"]] = math.nan
    as_from_sql = summary.astype(object).where(summary.notna(), None)
    assert speedup_chart(as_from_sql, "cpu_pure", cores=4).startswith("<svg")


def full_summary() -> pd.DataFrame:
    """A run-like summary: two tasks, a transfer task over two payloads, memory and times."""
    frame = pd.concat(
        [
            summary_rows("cpu_pure"),
            summary_rows("io_sleep"),
            summary_rows("transfer", payloads=(1024, 1 << 20)),
        ],
        ignore_index=True,
    )
    scale = frame["payload_bytes"] / 1024
    return frame.assign(
        variant=frame["task"].map({"transfer": "transport=pickle"}).fillna(""),
        median_wall_s=1.0 / frame["speedup"] * scale**0.1,
        efficiency=frame["speedup"] / frame["workers"],
        cpu_utilisation=frame["workers"].clip(upper=4) * 0.9,
        median_peak_uss_bytes=frame["workers"] * 10e6,
        median_peak_rss_bytes=frame["workers"] * 15e6,
        median_startup_s=frame["model"].map({"threads": 0.001, "processes-spawn": 0.1}),
        median_shutdown_s=frame["model"].map({"threads": 0.0005, "processes-spawn": 0.01}),
    )


@pytest.mark.parametrize(
    ("draw", "title"),
    [
        (lambda s: metrics_chart(s, "cpu_pure", cores=4), "Wall time, efficiency and CPU use"),
        (lambda s: memory_chart(s, "io_sleep", cores=4), "Memory per worker for task io_sleep"),
        (startup_chart, "Start-up and shutdown cost per model"),
        (transfer_chart, "Cost of moving data to workers and back"),
        (best_model_heatmap, "Fastest model per task and worker count"),
        (
            lambda s: interpreter_chart(
                pd.concat([s, s.assign(interpreter="python3.13t")], ignore_index=True)
            ),
            "Interpreters compared",
        ),
    ],
)
def test_every_figure_is_inline_svg_with_title_and_alt_text(draw, title) -> None:
    svg = draw(full_summary())
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.get("aria-label").startswith(title)
    assert root.find(f"{SVG_NS}title").text.startswith(title)
    assert external_references(svg) == []
    assert plt.get_fignums() == []  # nothing left open in pyplot


def test_figures_without_data_say_so() -> None:
    summary = full_summary()
    with pytest.raises(NothingToDraw, match="one interpreter"):
        interpreter_chart(summary)
    with pytest.raises(NothingToDraw, match="no transfer cells"):
        transfer_chart(summary[summary["task"] != "transfer"])
    with pytest.raises(NothingToDraw, match="nothing starts up"):
        startup_chart(summary[summary["model"] == "sequential"])


def test_interpreters_compared_keeps_each_payload_apart() -> None:
    summary = summary_rows("cpu_pure", payloads=(1024, 1 << 20), interpreters=("a", "b"))
    svg = interpreter_chart(summary)
    labels = re.findall(r"<!-- (.*?) -->", svg)  # matplotlib names each text drawn as paths
    assert "cpu_pure threads ×8, 1 KiB" in labels
    assert "cpu_pure threads ×8, 1 MiB" in labels


def test_heatmap_names_the_fastest_model_and_its_margin() -> None:
    summary = full_summary()
    # make processes clearly fastest for io_sleep at 8 workers: 50% ahead of threads
    pick = (summary["task"] == "io_sleep") & (summary["workers"] == 8)
    summary.loc[pick & (summary["model"] == "threads"), "median_wall_s"] = 0.3
    summary.loc[pick & (summary["model"] == "processes-spawn"), "median_wall_s"] = 0.2
    table = best_models(summary).set_index(["task", "workers"])
    assert table.loc[("io_sleep", 8), "best"] == "processes-spawn"
    assert table.loc[("io_sleep", 8), "runner_up"] == "threads"
    assert table.loc[("io_sleep", 8), "margin"] == pytest.approx(0.5)
    assert best_model_heatmap(summary).startswith("<svg")


def test_the_usl_fit_is_drawn_where_a_model_has_three_worker_counts():
    """summary_rows' two models have four worker counts each: a USL curve is drawn for
    each (two more line objects than with two worker counts, where no USL is fitted)."""
    full = speedup_chart(summary_rows(), "cpu_pure", cores=4)
    two = summary_rows()
    few = speedup_chart(two[two["workers"].isin([1, 2])], "cpu_pure", cores=4)
    assert "Universal Scalability Law" in full
    assert (
        len(re.findall(r'id="[^"]*line2d_', full)) >= len(re.findall(r'id="[^"]*line2d_', few)) + 2
    )


def many_models(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with eight parallel models, tiny wall times and a long interpreter name:
    a legend of three rows and wide tick labels."""
    parallel = summary[summary["model"] == "threads"]
    names = ("threads", "asyncio", "processes-fork", "processes-spawn", "subinterpreters")
    copies = [parallel.assign(model=f"{name}-{index}") for index in (1, 2) for name in names[:4]]
    frame = pd.concat([summary[summary["model"] == "sequential"], *copies], ignore_index=True)
    return frame.assign(
        median_wall_s=frame["median_wall_s"] * 1.234e-4,
        interpreter=frame["interpreter"].map(lambda name: f"{name}-free-threaded-debug"),
    )


def text_layout_problems(figure) -> list[str]:
    """Texts outside the figure (a panel's ticks, labels and title, the legend, the title),
    or a panel's texts over another panel, or the legend or title over a panel's texts:
    what a fixed-margin layout must never produce."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = [ax for ax in figure.axes if ax.get_visible()]
    boxes = {
        f"panel {n} ({ax.get_title()!r})": ax.get_tightbbox(renderer) for n, ax in enumerate(axes)
    }
    texts = dict(boxes)
    texts.update(
        {f"legend {n}": lg.get_window_extent(renderer) for n, lg in enumerate(figure.legends)}
    )
    if figure._suptitle is not None:
        texts["title"] = figure._suptitle.get_window_extent(renderer)
    page = figure.bbox.padded(1)
    problems = [
        f"{name} leaves the figure"
        for name, box in texts.items()
        if box.x0 < page.x0 or box.x1 > page.x1 or box.y0 < page.y0 or box.y1 > page.y1
    ]
    for n, ax in enumerate(axes):
        area = ax.bbox  # the panel's plotting area
        problems += [
            f"{name} crosses panel {n}"
            for name, box in texts.items()
            if not name.startswith(f"panel {n} ") and box.overlaps(area)
        ]
    problems += [
        f"{name} crosses {panel}"
        for name, box in texts.items()
        if not name.startswith("panel")
        for panel, decoration in boxes.items()
        if box.overlaps(decoration)
    ]
    return problems


@pytest.mark.parametrize("shape", ["one facet", "payloads and interpreters", "eight models"])
@pytest.mark.parametrize("figure_of", [speedup_figure, metrics_figure, memory_figure])
def test_fixed_margins_keep_every_text_inside_the_figure_and_off_the_panels(figure_of, shape):
    summary = full_summary()
    if shape == "payloads and interpreters":
        summary = pd.concat(
            [summary, summary.assign(interpreter="python3.13t", payload_bytes=1 << 20)],
            ignore_index=True,
        )
    elif shape == "eight models":  # and two payloads
        summary = many_models(
            pd.concat([summary, summary.assign(payload_bytes=1 << 20)], ignore_index=True)
        )
    drawn = figure_of(summary, "cpu_pure", cores=4)
    assert text_layout_problems(drawn.figure) == []
