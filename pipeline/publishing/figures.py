"""What every chart shares: fixed margins around a grid of panels (``Grid``), a figure
not yet rendered (``Drawn``), and rendering to self-contained inline SVG."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from html import escape
from typing import Any, NamedTuple

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


class Drawn(NamedTuple):
    """A figure before it is rendered: the figure, its title and its text description."""

    figure: Figure
    title: str
    description: str


def render(drawn: Drawn, *, prefix: str | None = None) -> str:
    """The figure as inline SVG (ids prefixed by a hash of the title unless ``prefix``)."""
    return to_svg(
        drawn.figure, drawn.title, drawn.description, prefix=prefix or id_prefix(drawn.title)
    )


@dataclass
class Grid:
    """Fixed margins, in inches, around a grid of panels with a title above and a legend
    below: room for tick labels (tests/test_charts.py keeps them to five characters or so),
    axis labels, panel titles and as many legend rows as the labels need. Cheaper than a
    layout engine, which measures every text on every render (a third of the time of a
    task's figures); tests check that no text leaves the figure or crosses a panel."""

    rows: int
    columns: int
    width: float  # of the figure, inches
    titles: bool  # each panel has a title line
    legend_labels: list[str]
    most_legend_columns: int = 5
    LEFT = 0.8  # y tick labels and the y label
    RIGHT = 0.2
    TOP = 0.45  # the figure's title
    TITLE = 0.3  # a panel's title
    BOTTOM = 0.55  # x tick labels and the x label
    LEGEND_ROW = 0.27
    LEGEND_ENTRY = 0.75  # a legend entry's handle and spacing, plus LEGEND_CHAR a character
    LEGEND_CHAR = 0.08
    GAP = 0.85  # between columns: the next panel's y tick labels and y label

    @property
    def legend_columns(self) -> int:
        """As many legend columns as fit the figure's width (at most most_legend_columns):
        matplotlib fills them top to bottom, each as wide as its widest entry."""
        widths = [self.LEGEND_ENTRY + self.LEGEND_CHAR * len(label) for label in self.legend_labels]
        for columns in range(min(self.most_legend_columns, len(widths)), 1, -1):
            rows = -(-len(widths) // columns)
            used = sum(max(widths[start : start + rows]) for start in range(0, len(widths), rows))
            if used <= self.width - 0.2:
                return columns
        return 1

    @property
    def legend_rows(self) -> int:
        return -(-len(self.legend_labels) // self.legend_columns)

    def figure(self, panel_height: float, **subplots: Any) -> tuple[Figure, Any]:
        """A figure with room for ``rows`` panels of this height, and its grid of axes."""
        bottom = self.BOTTOM + self.legend_rows * self.LEGEND_ROW + 0.1
        title = self.TITLE if self.titles else 0.0
        height = self.rows * panel_height + self.TOP + title + bottom
        height += (self.rows - 1) * (self.BOTTOM + title)
        figure = Figure(figsize=(self.width, height))
        panel_width = (
            self.width - self.LEFT - self.RIGHT - (self.columns - 1) * self.GAP
        ) / self.columns
        spacing = {
            "left": self.LEFT / self.width,
            "right": 1 - self.RIGHT / self.width,
            "top": 1 - (self.TOP + title) / height,
            "bottom": bottom / height,
            "wspace": self.GAP / panel_width,
            "hspace": (self.BOTTOM + title) / panel_height,
        }
        axes = figure.subplots(
            self.rows, self.columns, squeeze=False, gridspec_kw=spacing, **subplots
        )
        return figure, axes

    def legend(self, figure: Figure, handles: list[Line2D]) -> None:
        """The legend centred at the foot of the figure."""
        figure.legend(
            handles=handles,
            loc="lower center",
            ncols=self.legend_columns,
            bbox_to_anchor=(0.5, 0.005),
            frameon=False,
        )


def finish(figure: Figure, title: str, description: str) -> str:
    """Title the figure and render it (ids prefixed by a hash of the title)."""
    figure.suptitle(title, parse_math=False)
    return to_svg(figure, title, description, prefix=id_prefix(title))


def id_prefix(task: str) -> str:
    """A prefix that keeps element ids unique when several charts share one HTML page."""
    return "chart-" + hashlib.sha256(task.encode()).hexdigest()[:10] + "-"


def to_svg(figure: Figure, title: str, description: str, *, prefix: str) -> str:
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
