"""Charts of a measure by month, drawn on the server as SVG with pygal (no script is sent).

Each chart comes with its text alternative and the rows of its data table, built from the same
figures, so a screen-reader user and a sighted one read the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

from xml.etree import ElementTree

import pygal
from pygal.style import Style

# Plain, high-contrast colours; the page's own CSS does not reach inside an <img>.
STYLE = Style(background="white", plot_background="white", foreground="#1a1a1a",
              foreground_strong="#1a1a1a", foreground_subtle="#555555", colors=("#1f5fa8", "#b35900"),
              font_family="sans-serif")
# pygal writes its styles into the SVG; this response-only policy allows them and nothing else.
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@dataclass(frozen=True)
class MonthRow:
    month: str
    count: int
    denominator: int
    percent: float | None
    within_percent: float | None


def month_rows(figures: dict) -> list[MonthRow]:
    return [MonthRow(month, f["count"], f["denominator"], f["percent"],
                     f["within_deadline"]["percent"])
            for month, f in sorted(figures["breakdowns"].get("by_month", {}).items())]


def text_alternative(key: str, figures: dict) -> str:
    """The chart said in words: each month's percentage and its count over its denominator."""
    rows = month_rows(figures)
    if not rows:
        return f"{key}, {figures['label']}: no episodes in the period."
    parts = [f"{r.month}: {'no data' if r.percent is None else f'{r.percent}%'} "
             f"({r.count} of {r.denominator})" for r in rows]
    return f"{key}, {figures['label']}, by month of T0: " + "; ".join(parts) + "."


def chart_svg(key: str, figures: dict) -> bytes:
    """A bar chart of the measure's percentage by month (and its within-deadline variant)."""
    rows = month_rows(figures)
    chart = pygal.Bar(js=[], style=STYLE, width=640, height=320, range=(0, 100),
                      title=f"{key}: {figures['label']}", x_title="Month of T0",
                      y_title="Percent", legend_at_bottom=True, print_values=False,
                      show_legend=figures.get("has_deadline", False), x_label_rotation=30)
    chart.x_labels = [r.month for r in rows]
    chart.add("Any evidence" if figures.get("has_deadline") else "Percent",
              [r.percent for r in rows])
    if figures.get("has_deadline"):
        chart.add("Within the deadline", [r.within_percent for r in rows])
    return _without_scripts(chart.render_tree())


def _without_scripts(root) -> bytes:
    """pygal writes its configuration as a <script> even with ``js=[]``; nothing runs it here,
    and the chart must carry no script at all, so it is taken out of the tree."""
    for parent in list(root.iter()):
        for node in list(parent):
            if isinstance(node.tag, str) and node.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(node)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
