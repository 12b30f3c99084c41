"""matplotlib charts for notebooks and reports: static images that embed in exported HTML."""

from __future__ import annotations

import matplotlib.pyplot as plt
import polars as pl
from matplotlib.ticker import FuncFormatter, PercentFormatter

WATERFALL_STEPS = (
    ("start", "Start", 1),
    ("created", "Created", 1),
    ("pulled_in", "Pulled in", 1),
    ("amount_up", "Amount up", 1),
    ("amount_down", "Amount down", -1),
    ("pushed_out", "Pushed out", -1),
    ("won", "Won", -1),
    ("lost", "Lost", -1),
)


def money(value: float) -> str:
    """An amount for a chart label: 3.52M, 374.3k, 0."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.2f}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:,.1f}k"
    return f"{value:,.0f}"


MONEY_AXIS = FuncFormatter(lambda value, _: money(value))
# The value axis of a bar or line chart: amounts (3.5M rather than matplotlib's 1e6 offset) or
# shares in 0..1 as percentages.
AXES = {"money": MONEY_AXIS, "share": PercentFormatter(xmax=1.0, decimals=0)}


def waterfall_chart(totals: pl.DataFrame, title: str = "Pipeline movement", ylabel: str = "amount"):
    """Bars from start to end of the first row (other columns, such as its currency, are
    labels); each step floats on the running total. A ``reopened`` column (the part of created
    that came from reopens) is named under the created bar."""
    first = totals.row(0, named=True)
    row = {key: float(first[key] or 0) for key in (*(step[0] for step in WATERFALL_STEPS), "end")}
    fig, ax = plt.subplots(figsize=(9, 4))
    running = 0.0
    labels = []
    for index, (key, label, sign) in enumerate(WATERFALL_STEPS):
        value = row[key]
        if key == "start":
            bottom, height, colour = 0.0, value, "#4C72B0"
            running = value
        else:
            bottom = running if sign > 0 else running - value
            height = value
            running += sign * value
            colour = "#55A868" if sign > 0 else "#C44E52"
        ax.bar(index, height, bottom=bottom, color=colour)
        ax.text(index, bottom + height, money(value), ha="center", va="bottom", fontsize=8)
        reopened = float(first.get("reopened") or 0)
        if key == "created" and reopened:
            label = f"{label}\n(reopened {money(reopened)})"
        labels.append(label)
    ax.bar(len(labels), row["end"], color="#4C72B0")
    ax.text(len(labels), row["end"], money(row["end"]), ha="center", va="bottom", fontsize=8)
    labels.append("End")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(MONEY_AXIS)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def bar_chart(frame: pl.DataFrame, x: str, y: str, title: str, ylabel: str | None = None, *, axis: str | None = None):
    """``axis``: ``"money"`` or ``"share"`` to label the values as amounts or percentages."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar([str(v) for v in frame[x].to_list()], [float(v or 0) for v in frame[y].to_list()], color="#4C72B0")
    ax.set_title(title)
    ax.set_ylabel(ylabel or y)
    if axis:
        ax.yaxis.set_major_formatter(AXES[axis])
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def line_chart(frame: pl.DataFrame, x: str, y: str, title: str, ylabel: str | None = None, *, axis: str | None = None):
    """``axis`` as for :func:`bar_chart`."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(frame[x].to_list(), [float(v or 0) for v in frame[y].to_list()], color="#4C72B0")
    ax.set_title(title)
    ax.set_ylabel(ylabel or y)
    if axis:
        ax.yaxis.set_major_formatter(AXES[axis])
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
