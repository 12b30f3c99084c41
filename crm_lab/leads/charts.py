"""matplotlib charts of lead sweeps, calibration and scenario grids: static images that embed in
exported HTML."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from crm_lab.charts import MONEY_AXIS
from crm_lab.leads.calibration import CalibrationReport

BLUE, ORANGE, GREEN, RED, GREY = "#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8C8C8C"


def capacity_threshold(table: pl.DataFrame) -> float | None:
    """The lowest threshold whose workload fits the capacity (None when even the highest does
    not fit; routing more than that overloads the SDRs)."""
    fitting = table.filter(pl.col("within_capacity"))
    return None if fitting.is_empty() else float(fitting["threshold"].min())


def threshold_chart(
    table: pl.DataFrame,
    *,
    capacity_hours: float | None = None,
    marked: float | None = None,
    title: str = "Every cut-off",
):
    """Precision and recall, profit, and workload against the cut-off, linked by the same
    threshold axis: bootstrap bands where the table has them, the capacity limit as a red line
    (and the lowest cut-off that fits it), the chosen cut-off in green, and ``marked`` (e.g. a
    slider's value) in black.

    ``table`` is a sweep, or a sweep with bands and ``is_chosen`` (``BootstrapSweep.table``).
    """
    x = table["threshold"].to_numpy()
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for axis, metric, colour in ((top, "precision", BLUE), (top, "recall", ORANGE), (middle, "profit", GREEN)):
        axis.plot(x, table[metric].to_numpy(), color=colour, label=metric, drawstyle="steps-mid")
        if f"{metric}_lo" in table.columns:
            axis.fill_between(x, table[f"{metric}_lo"].to_numpy(), table[f"{metric}_hi"].to_numpy(),
                              color=colour, alpha=0.2, step="mid", label=f"{metric} band")
    top.set_ylabel("share")
    top.set_ylim(0, 1.05)
    middle.axhline(0, color=GREY, linewidth=0.8)
    middle.set_ylabel("profit")
    middle.yaxis.set_major_formatter(MONEY_AXIS)
    bottom.plot(x, table["workload_hours"].to_numpy(), color=BLUE, label="workload", drawstyle="steps-mid")
    bottom.set_ylabel("SDR hours")
    bottom.set_xlabel("cut-off (route leads with score >= cut-off)")
    if capacity_hours is not None:
        bottom.axhline(capacity_hours, color=RED, linestyle="--", label=f"capacity {capacity_hours:g} h")
        limit = capacity_threshold(table)
        if limit is not None:
            for axis in (top, middle, bottom):
                axis.axvline(limit, color=RED, linestyle=":", linewidth=1)
    if "is_chosen" in table.columns and table["is_chosen"].any():
        chosen = float(table.filter(pl.col("is_chosen"))["threshold"][0])
        for axis in (top, middle, bottom):
            axis.axvline(chosen, color=GREEN, linestyle="--", linewidth=1.2)
        middle.plot([], [], color=GREEN, linestyle="--", label=f"best {chosen:.4g}")
    if marked is not None and math.isfinite(marked):
        for axis in (top, middle, bottom):
            axis.axvline(marked, color="black", linewidth=1)
    for axis in (top, middle, bottom):
        # Beside the panel: inside, "best" still sat on a curve or a band in some panels.
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        axis.grid(alpha=0.3)
    top.set_title(title)
    fig.tight_layout()
    return fig


def reliability_chart(report: CalibrationReport, title: str = "Calibration on the swept leads"):
    """Observed conversion rate against mean predicted probability per bin; the diagonal is a
    perfectly calibrated model. Marker area follows the number of leads."""
    table = report.reliability
    fig, ax = plt.subplots(figsize=(5, 5))
    top = max(float(table["upper"].max()), float(table["observed_rate"].max()), 0.05)
    ax.plot([0, top], [0, top], color=GREY, linestyle="--", linewidth=1, label="perfect calibration")
    sizes = 20 + 300 * table["leads"].to_numpy() / max(int(table["leads"].max()), 1)
    ax.plot(table["mean_predicted"].to_numpy(), table["observed_rate"].to_numpy(), color=BLUE)
    ax.scatter(table["mean_predicted"].to_numpy(), table["observed_rate"].to_numpy(), s=sizes, color=BLUE,
               label="bins (area: leads)")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed conversion rate")
    ax.set_title(f"{title}\nAUC {report.auc:.3f}, Brier {report.brier:.4f}")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def heatmap_chart(grid: pl.DataFrame, x: str, y: str, value: str, title: str | None = None, fmt: str = "{:.2f}"):
    """A grid sweep's ``value`` over two knobs (``x`` across, ``y`` up), each cell labelled."""
    xs = sorted(grid[x].unique().to_list())
    ys = sorted(grid[y].unique().to_list())
    cells = np.full((len(ys), len(xs)), np.nan)
    for row in grid.select(x, y, value).iter_rows():
        cells[ys.index(row[1]), xs.index(row[0])] = row[2]
    fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 3, 0.8 * len(ys) + 2))
    image = ax.imshow(cells, origin="lower", cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    middle = np.nanmean(cells)
    for (row, column), cell in np.ndenumerate(cells):
        if np.isfinite(cell):
            ax.text(column, row, fmt.format(cell), ha="center", va="center", fontsize=8,
                    color="white" if cell < middle else "black")
    fig.colorbar(image, ax=ax, label=value)
    ax.set_title(title or value)
    fig.tight_layout()
    return fig
