"""matplotlib charts of forecasts: static images that embed in exported HTML (no network)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from crm_lab.charts import MONEY_AXIS, money
from crm_lab.forecast.periods import Window
from crm_lab.tables import money_label

BLUE, GREY, RED, GREEN = "#4C72B0", "#8C8C8C", "#C44E52", "#55A868"


def fan_chart(samples: np.ndarray, window: Window, *, target: float | None = None, title: str = "Bookings forecast",
              currency: str | None = None):
    """Cumulative bookings by the end of each month of the window: P50 line, P10-P90 and P5-P95
    bands, and the target as a horizontal line. ``samples``: (trials, P) per-period totals
    including what is already booked; ``currency`` labels the amounts."""
    cumulative = np.cumsum(samples, axis=1)
    levels = np.quantile(cumulative, (0.05, 0.1, 0.5, 0.9, 0.95), axis=0)
    x = np.arange(samples.shape[1] + 1)
    start = np.zeros((5, 1))
    levels = np.hstack([start, levels])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.fill_between(x, levels[0], levels[4], color=BLUE, alpha=0.15, label="P5-P95")
    ax.fill_between(x, levels[1], levels[3], color=BLUE, alpha=0.3, label="P10-P90")
    ax.plot(x, levels[2], color=BLUE, marker="o", label="P50")
    if target is not None:
        ax.axhline(target, color=RED, linestyle="--", label=f"target {money(target)}")
    ax.set_xticks(x, ["start"] + [p.label for p in window.periods])
    ax.set_ylabel(money_label("cumulative bookings", currency))
    ax.yaxis.set_major_formatter(MONEY_AXIS)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def histogram(totals: np.ndarray, *, target: float | None = None, title: str = "Bookings in the window", bins: int = 60,
              currency: str | None = None):
    """Distribution of the window's total over trials, with P10/P50/P90 and the target."""
    totals = np.asarray(totals, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.hist(totals, bins=bins, color=BLUE, alpha=0.8)
    for q, style in zip(np.quantile(totals, (0.1, 0.5, 0.9)), (":", "-", ":")):
        ax.axvline(q, color="black", linestyle=style, linewidth=1)
    if target is not None:
        share = float((totals >= target).mean())
        ax.axvline(target, color=RED, linestyle="--", linewidth=2, label=f"target {money(target)}: P(reach) {share:.0%}")
        ax.legend(fontsize=8)
    ax.xaxis.set_major_formatter(MONEY_AXIS)
    ax.set_xlabel(money_label("total bookings", currency) + " (lines: P10, P50, P90)")
    ax.set_ylabel("trials")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def tornado_chart(tornado: pl.DataFrame, *, value: str = "p50", title: str = "Sensitivity of P50",
                  currency: str | None = None):
    """Horizontal bars from each knob's low to its high value of ``value`` ('p50', 'mean' or
    'p_target'), around the base."""
    frame = tornado.sort(pl.col("swing").abs())
    base = float(frame[f"{value}_base"][0])
    low = frame[f"{value}_low"].to_numpy().astype(float)
    high = frame[f"{value}_high"].to_numpy().astype(float)
    labels = [f"{k} ({lo:g} / {hi:g})" for k, lo, hi in zip(frame["knob"], frame["low"], frame["high"])]
    y = np.arange(frame.height)
    fig, ax = plt.subplots(figsize=(8, 0.45 * frame.height + 1.2))
    ax.barh(y, low - base, left=base, color=RED, alpha=0.8, label="knob down")
    ax.barh(y, high - base, left=base, color=GREEN, alpha=0.8, label="knob up")
    ax.axvline(base, color="black", linewidth=1)
    ax.set_yticks(y, labels, fontsize=8)
    if value != "p_target":
        ax.xaxis.set_major_formatter(MONEY_AXIS)
        ax.set_xlabel(money_label(value.upper() if value == "p50" else value, currency))
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def calibration_chart(calibration: pl.DataFrame, title: str = "Backtest calibration"):
    """Observed share of actuals at or below each forecast quantile against the nominal level,
    per method (on the diagonal = calibrated)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", label="calibrated")
    for method, colour in (("monte_carlo", BLUE), ("weighted_pipeline", RED)):
        part = calibration.filter(pl.col("method") == method)
        if part.height:
            ax.plot(part["level"], part["share_below"], marker="o", color=colour, label=method.replace("_", " "))
    ax.set_xlabel("forecast quantile level")
    ax.set_ylabel("share of actuals at or below it")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def backtest_chart(rows: pl.DataFrame, company: str, title: str | None = None, currency: str | None = None):
    """One company's backtest: actual against the P10-P90 intervals of both methods over time."""
    part = rows.filter((pl.col("company_id") == company) & (pl.col("group_by") == "company")).sort("as_of")
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for method, colour, offset in (("monte_carlo", BLUE, -0.15), ("weighted_pipeline", RED, 0.15)):
        m = part.filter(pl.col("method") == method)
        x = np.arange(m.height) + offset
        ax.vlines(x, m["p10"], m["p90"], color=colour, linewidth=5, alpha=0.5, label=f"{method.replace('_', ' ')} P10-P90")
        ax.plot(x, m["p50"], "_", color=colour, markersize=10)
    actual = part.filter(pl.col("method") == "monte_carlo")
    ax.plot(np.arange(actual.height), actual["actual"], "o", color="black", label="actual")
    ax.set_xticks(np.arange(actual.height), [d.strftime("%Y-%m") for d in actual["as_of"]], rotation=45, fontsize=8)
    ax.yaxis.set_major_formatter(MONEY_AXIS)
    ax.set_ylabel(money_label("bookings", currency))
    ax.set_title(title or f"Backtest, {company}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
