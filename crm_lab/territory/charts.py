"""matplotlib charts of territory plans: maps before and after, balance against the bands, and
the disruption-versus-balance curve. Static images, so they embed in exported HTML."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from crm_lab.charts import AXES
from crm_lab.territory.metrics import rep_loads
from crm_lab.territory.model import TerritoryPlan

MOVED_EDGE = "#222222"
BAND_COLOUR = "#DDDDDD"


def _rep_colours(n_reps: int) -> np.ndarray:
    cmap = plt.get_cmap("tab20")
    return np.array([cmap(j % 20) for j in range(n_reps)])


def territory_map(plan: TerritoryPlan, rep_of_account=None, *, title: str = "", ax=None, mark_moves: bool = True):
    """Accounts (dots) coloured by rep and reps' homes (stars, new reps with a red edge); moved or
    reassigned accounts get a dark ring. ``rep_of_account`` defaults to the plan's assignment
    (pass ``plan.rules.current`` for today's)."""
    data = plan.data
    vector = plan.rep_of_account if rep_of_account is None else np.asarray(rep_of_account)
    colours = _rep_colours(data.n_reps)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    assigned = vector >= 0
    face = np.where(assigned[:, None], colours[np.maximum(vector, 0)], np.array([[0.7, 0.7, 0.7, 1.0]]))
    changed = np.zeros(data.n_accounts, dtype=bool)
    if mark_moves:
        current = plan.rules.current
        changed = assigned & (vector != current)
    ax.scatter(data.account_lon, data.account_lat, s=18, c=face, edgecolors=np.where(changed, MOVED_EDGE, "none"),
               linewidths=0.9, zorder=2)
    edges = np.where(data.rep_is_new, "red", "black")
    ax.scatter(data.rep_home_lon, data.rep_home_lat, marker="*", s=160, c=colours, edgecolors=edges, linewidths=1.0,
               zorder=3)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(title)
    ax.set_aspect(1 / np.cos(np.radians(np.nanmean(data.account_lat) if data.n_accounts else 0.0)), adjustable="datalim")
    return ax


def before_after_maps(plan: TerritoryPlan, title: str = ""):
    """Today's assignment beside the plan's, same colours per rep."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    territory_map(plan, plan.rules.current, title="Today", ax=left, mark_moves=False)
    summary = plan.summary()
    label = f"Plan ({plan.status}{', soft' if plan.kind == 'soft' else ''}): {summary.get('moved', 0)} moved, " \
            f"{summary.get('reassigned', 0)} reassigned (ringed)"
    territory_map(plan, title=label, ax=right)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def balance_bars(plan: TerritoryPlan, measure: str = "workload", title: str = ""):
    """Each rep's workload (or potential) today and in the plan, against its band (grey range)
    and target (tick)."""
    if measure not in ("workload", "potential"):
        raise ValueError(f"measure must be 'workload' or 'potential'; got {measure!r}")
    column = "workload_hours" if measure == "workload" else "potential"
    after = plan.rep_loads()
    before = rep_loads(plan.data, plan.rules, plan.rules.current)
    x = np.arange(after.height)
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * after.height + 2), 3.8))
    lower = after[f"{measure}_lower"].to_numpy()
    upper = after[f"{measure}_upper"].to_numpy()
    finite = np.isfinite(upper) & np.isfinite(lower)
    if finite.any():  # no band (e.g. potential unbalanced): no grey bars, and no legend entry for them
        ax.bar(x[finite], (upper - lower)[finite], bottom=lower[finite], width=0.9, color=BAND_COLOUR, label="band",
               zorder=1)
    ax.bar(x - 0.2, before[column].to_numpy(), width=0.4, color="#C9A66B", label="today", zorder=2)
    ax.bar(x + 0.2, after[column].to_numpy(), width=0.4, color="#4C72B0", label="plan", zorder=2)
    ax.scatter(x, after[f"{measure}_target"].to_numpy(), marker="_", s=250, color="black", label="target", zorder=3)
    ax.set_xticks(x, after["rep_id"].to_list(), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("hours" if measure == "workload" else "potential")
    if measure == "potential":
        ax.yaxis.set_major_formatter(AXES["money"])  # 1.5M, not matplotlib's 1e6 offset
    ax.set_title(title or f"{measure.capitalize()} per rep against its band")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def tradeoff_chart(curve: pl.DataFrame, tolerance: float | None = None, title: str = "Disruption against balance"):
    """Largest relative workload deviation (and total distance) against the move budget."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    budgets = curve["max_moves"].to_numpy()
    deviation = curve["max_workload_deviation"].to_numpy(allow_copy=True).astype(float)
    ax.plot(budgets, 100 * deviation, marker="o", color="#4C72B0", label="largest workload deviation")
    if tolerance is not None:
        ax.axhline(100 * tolerance, color="#C44E52", linestyle="--", linewidth=1, label="tolerance")
    ax.set_xlabel("move budget (accounts)")
    ax.set_ylabel("% from target")
    twin = ax.twinx()
    twin.plot(budgets, curve["total_distance_km"].to_numpy(allow_copy=True).astype(float), marker="s",
              color="#55A868", label="total distance")
    twin.set_ylabel("km")
    lines = ax.get_legend_handles_labels()
    other = twin.get_legend_handles_labels()
    # Below the axes: inside, it covered the points of one of the two lines whatever its corner.
    ax.legend(lines[0] + other[0], lines[1] + other[1], fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=3, frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    return fig
