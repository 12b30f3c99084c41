"""The independent check of a territory plan: every rule re-evaluated from the data for a given
assignment, without trusting anything the solver said. A hard plan must pass it; a soft plan's
violations are exactly what it reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_lab.territory.data import TerritoryData
from crm_lab.territory.rules import LIMIT_TOLERANCE, Band, Rules, TerritorySettings


@dataclass(frozen=True)
class Violation:
    """One broken rule. ``limit`` and ``value`` are in the rule's unit; ``excess`` is how far
    past the limit the plan is (always > 0)."""

    kind: str  # unassigned, forbidden, lock, radius, capacity, workload_band, potential_band, max_moves, max_moved_potential
    subject: str  # the rep, account or "plan" it is about
    limit: float
    value: float
    text: str

    @property
    def excess(self) -> float:
        return abs(self.value - self.limit)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "limit": self.limit, "value": self.value,
                "excess": self.excess, "text": self.text}


def _number(value: float, unit: str = "") -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".rstrip()


def _breaks(value: float, limit: float, above: bool) -> bool:
    slack = LIMIT_TOLERANCE * max(abs(limit), 1.0)
    return value > limit + slack if above else value < limit - slack


def rep_sums(rep_of_account: np.ndarray, per_pair: np.ndarray, n_reps: int) -> np.ndarray:
    """Per-rep sum of an accounts x reps matrix (or per-account vector) over the plan."""
    rows = np.flatnonzero(rep_of_account >= 0)
    cols = rep_of_account[rows]
    values = per_pair[rows, cols] if per_pair.ndim == 2 else per_pair[rows]
    return np.bincount(cols, weights=values, minlength=n_reps)


def check_plan(data: TerritoryData, settings: TerritorySettings, rules: Rules, rep_of_account) -> list[Violation]:
    """Every rule a plan breaks (an empty list for a plan that keeps them all).

    Parameters
    ----------
    rep_of_account : int array
        Rep index per account (-1: not assigned).
    """
    plan = np.asarray(rep_of_account, dtype=np.int64)
    reps, accounts = data.rep_ids, data.account_ids
    out: list[Violation] = []
    for i in np.flatnonzero((plan < 0) | (plan >= data.n_reps)).tolist():
        out.append(Violation("unassigned", accounts[i], 1, 0, f"account {accounts[i]} has no rep"))
    rows = np.flatnonzero((plan >= 0) & (plan < data.n_reps))
    cols = plan[rows]

    for i, j in zip(rows[rules.forbidden[rows, cols]].tolist(), cols[rules.forbidden[rows, cols]].tolist()):
        out.append(Violation("forbidden", accounts[i], 0, 1, f"account {accounts[i]} went to {reps[j]}, a forbidden pair"))
    for i, j in rules.lock_pairs:
        if plan[i] != j:
            got = reps[plan[i]] if plan[i] >= 0 else "no rep"
            out.append(Violation("lock", accounts[i], 1, 0, f"account {accounts[i]} is locked to {reps[j]} but went to {got}"))
    if settings.max_distance_km is not None:
        far = ~rules.within_radius[rows, cols] & (rules.current[rows] != cols) & ~rules.lock_mask[rows, cols]
        for i, j in zip(rows[far].tolist(), cols[far].tolist()):
            d = rules.distance_km[i, j]
            out.append(Violation("radius", accounts[i], settings.max_distance_km, d,
                                 f"account {accounts[i]} went to {reps[j]} {_number(d, 'km')} away, beyond "
                                 f"the {_number(settings.max_distance_km, 'km')} radius"))

    workload = rep_sums(plan, rules.workload, data.n_reps)
    for j in np.flatnonzero(np.isfinite(rules.capacity)).tolist():
        if _breaks(workload[j], rules.capacity[j], above=True):
            out.append(Violation("capacity", reps[j], rules.capacity[j], workload[j],
                                 f"{reps[j]}: workload {_number(workload[j], 'h')} exceeds capacity "
                                 f"{_number(rules.capacity[j], 'h')} by {_number(workload[j] - rules.capacity[j], 'h')}"))
    out += _band_violations(rules.workload_band, workload, reps)
    out += _band_violations(rules.potential_band, rep_sums(plan, rules.potential, data.n_reps), reps)

    moved = rules.moved[rows, cols]
    if settings.max_moves is not None and _breaks(float(moved.sum()), settings.max_moves, above=True):
        out.append(Violation("max_moves", "plan", settings.max_moves, float(moved.sum()),
                             f"{int(moved.sum())} accounts move, {int(moved.sum()) - settings.max_moves} more "
                             f"than the budget of {settings.max_moves}"))
    moved_potential = float(rules.potential[rows][moved].sum())
    if settings.max_moved_potential is not None and _breaks(moved_potential, settings.max_moved_potential, above=True):
        out.append(Violation("max_moved_potential", "plan", settings.max_moved_potential, moved_potential,
                             f"potential moved {_number(moved_potential)} exceeds the budget "
                             f"{_number(settings.max_moved_potential)}"))
    return out


def _band_violations(band: Band, loads: np.ndarray, reps: np.ndarray) -> list[Violation]:
    out = []
    for j, (value, lower, upper) in enumerate(zip(loads.tolist(), band.lower.tolist(), band.upper.tolist())):
        if _breaks(value, upper, above=True):
            out.append(Violation(f"{band.name}_band", reps[j], upper, value,
                                 f"{reps[j]}: {band.name} {_number(value, band.unit)} is above its band's upper end "
                                 f"{_number(upper, band.unit)} by {_number(value - upper, band.unit)}"))
        elif _breaks(value, lower, above=False):
            out.append(Violation(f"{band.name}_band", reps[j], lower, value,
                                 f"{reps[j]}: {band.name} {_number(value, band.unit)} is below its band's lower end "
                                 f"{_number(lower, band.unit)} by {_number(lower - value, band.unit)}"))
    return out


def plan_objective(rules: Rules, rep_of_account) -> float:
    """distance_weight x km + move_weight x accounts moved, recomputed from the data."""
    plan = np.asarray(rep_of_account, dtype=np.int64)
    rows = np.flatnonzero(plan >= 0)
    return float(rules.pair_cost[rows, plan[rows]].sum())
