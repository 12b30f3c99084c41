"""What-if: add or remove reps, compare plans side by side, and trace the trade-off between
disruption (accounts moved) and balance over a range of move budgets."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import polars as pl

from crm_lab.errors import InvalidArgument
from crm_lab.territory.data import TerritoryData
from crm_lab.territory.metrics import plan_summary
from crm_lab.territory.model import TerritoryPlan, plan_territories
from crm_lab.territory.rules import TerritorySettings
from crm_lab.territory.solve import SolverOptions


@dataclass(frozen=True)
class NewRep:
    """A rep to add: id, home location, capacity in hours and FTE."""

    rep_id: str
    home_lat: float
    home_lon: float
    capacity_hours: float
    fte: float = 1.0

    def __post_init__(self) -> None:
        if not -90 <= self.home_lat <= 90:
            raise InvalidArgument(f"add_rep: home_lat must be in [-90, 90]; got {self.home_lat!r}")
        if not -180 <= self.home_lon <= 180:
            raise InvalidArgument(f"add_rep: home_lon must be in [-180, 180]; got {self.home_lon!r}")
        if not self.capacity_hours > 0:
            raise InvalidArgument(f"add_rep: capacity_hours must be > 0; got {self.capacity_hours!r}")
        if not self.fte > 0:
            raise InvalidArgument(f"add_rep: fte must be > 0; got {self.fte!r}")

    @classmethod
    def parse(cls, text: str) -> NewRep:
        """``ID:LAT:LON:CAPACITY[:FTE]``, as the command line takes it.

        Examples
        --------
        >>> NewRep.parse("rep-new:40.7:-74.0:1600")
        NewRep(rep_id='rep-new', home_lat=40.7, home_lon=-74.0, capacity_hours=1600.0, fte=1.0)
        """
        parts = text.split(":")
        if len(parts) not in (4, 5) or not parts[0]:
            raise InvalidArgument(f"add_rep must be ID:LAT:LON:CAPACITY[:FTE]; got {text!r}")
        try:
            numbers = [float(p) for p in parts[1:]]
        except ValueError:
            raise InvalidArgument(f"add_rep must be ID:LAT:LON:CAPACITY[:FTE] with numbers; got {text!r}") from None
        return cls(parts[0], *numbers)


def add_rep(data: TerritoryData, rep: NewRep) -> TerritoryData:
    """A copy of ``data`` with one more rep (no accounts yet; territory centre = home). With a
    rep-specific workload matrix, the new rep's column is each account's mean workload."""
    if rep.rep_id in set(data.rep_ids.tolist()):
        raise InvalidArgument(f"add_rep: rep {rep.rep_id!r} already exists")
    return _with_new_rep(data, rep)


def _with_new_rep(data: TerritoryData, rep) -> TerritoryData:
    """``data`` plus ``rep`` unchecked: a home may be NaN and a capacity inf when the data has none."""
    workload = data.workload
    if workload.ndim == 2:
        workload = np.column_stack([workload, workload.mean(axis=1)])
    return replace(
        data,
        rep_ids=np.append(data.rep_ids, np.array([rep.rep_id], dtype=object)),
        rep_home_lat=np.append(data.rep_home_lat, rep.home_lat),
        rep_home_lon=np.append(data.rep_home_lon, rep.home_lon),
        rep_centre_lat=np.append(data.rep_centre_lat, rep.home_lat),
        rep_centre_lon=np.append(data.rep_centre_lon, rep.home_lon),
        capacity=np.append(data.capacity, rep.capacity_hours),
        fte=np.append(data.fte, rep.fte),
        rep_is_new=np.append(data.rep_is_new, True),
        workload=workload,
    )


def remove_rep(data: TerritoryData, rep_id: str) -> TerritoryData:
    """A copy of ``data`` without ``rep_id``; its accounts keep it as their current rep, so the
    plan reports them as reassigned (not moved, and not counted against a move budget)."""
    index = data.rep_index(rep_id, "remove_rep")
    if data.n_reps == 1:
        raise InvalidArgument(f"remove_rep: cannot remove {rep_id!r}, the only rep")
    keep = np.ones(data.n_reps, dtype=bool)
    keep[index] = False
    return data.with_reps(keep)


def with_rep_count(data: TerritoryData, count: int) -> TerritoryData:
    """``data`` with ``count`` reps: the first ``count`` when fewer, or new reps (average
    capacity and FTE, homes at the accounts' workload-weighted centres of the busiest reps'
    books) when more. For quick what-ifs on team size."""
    if not isinstance(count, (int, np.integer)) or count < 1:
        raise InvalidArgument(f"rep count must be an integer >= 1; got {count!r}")
    if count <= data.n_reps:
        keep = np.zeros(data.n_reps, dtype=bool)
        keep[:count] = True
        return data.with_reps(keep)
    current = data.current_index()
    hours = np.nan_to_num(data.account_workload(), nan=0.0)  # an import may have no workload_hours
    load = np.bincount(current[current >= 0], weights=hours[current >= 0], minlength=data.n_reps)
    busiest = np.argsort(-load, kind="stable")
    finite = data.capacity[np.isfinite(data.capacity)]
    capacity = float(np.mean(finite)) if len(finite) else math.inf  # no rep has a limit: neither does the new one
    result = data
    for k in range(count - data.n_reps):
        source = busiest[k % len(busiest)]
        book = (current == source) & ~np.isnan(data.account_lat) & ~np.isnan(data.account_lon)
        weights = hours[book] if hours[book].sum() > 0 else np.ones(int(book.sum()))
        if book.any():
            lat = float(np.average(data.account_lat[book], weights=weights))
            lon = float(np.average(data.account_lon[book], weights=weights))
        else:  # no located account in the book: the source rep's home (NaN without one)
            lat, lon = float(data.rep_home_lat[source]), float(data.rep_home_lon[source])
        rep = SimpleNamespace(rep_id=_new_rep_id(result, k + 1), home_lat=lat, home_lon=lon, capacity_hours=capacity,
                              fte=float(np.mean(data.fte)))
        result = _with_new_rep(result, rep)
    return result


def _new_rep_id(data: TerritoryData, number: int) -> str:
    existing = set(data.rep_ids.tolist())
    while f"new-{number}" in existing:
        number += 1
    return f"new-{number}"


def compare_plans(plans: Mapping[str, TerritoryPlan], *, include_current: bool = True) -> pl.DataFrame:
    """Plans side by side, one row each: status, objective, balance (largest relative deviation
    of workload and potential from target), distance, accounts and potential moved.

    With ``include_current``, a first row ``current`` shows today's assignment under the first
    plan's data and rules (accounts whose owner is not in the plan count as unassigned there).
    """
    rows = []
    if include_current and plans:
        first = next(iter(plans.values()))
        current = first.rules.current
        rows.append({"plan": "current", "status": "current", "kind": "current", "objective": None, "gap": None,
                     "violations": None} | plan_summary(first.data, first.rules, current))
    for name, plan in plans.items():
        summary = plan.summary()
        rows.append({"plan": name} | {k: summary.get(k) for k in ("status", "kind", "objective", "gap", "violations")}
                    | (plan_summary(plan.data, plan.rules, plan.rep_of_account) if plan.has_plan else {}))
    return pl.DataFrame(rows, strict=False)


def tradeoff_curve(
    data: TerritoryData,
    budgets: Iterable[int],
    settings: TerritorySettings | None = None,
    solver: SolverOptions | None = None,
) -> pl.DataFrame:
    """Disruption against balance: one plan per move budget, one row each.

    For each budget the plan is solved with ``max_moves`` set to it; where the bands cannot be
    met with so few moves, the soft plan (which keeps the budget and lets bands and capacities
    give) shows how close they can come. Columns: ``max_moves``,
    ``status``, ``kind``, ``moved``, ``moved_potential``, ``max_workload_deviation``,
    ``max_potential_deviation``, ``band_excess`` (total relative violation of the bands, 0 when
    they hold), ``total_distance_km``, ``objective``.
    """
    settings = settings or TerritorySettings()
    rows = []
    for budget in budgets:
        plan = plan_territories(data, replace(settings, max_moves=int(budget)), solver, soft_relaxes=("bands", "capacity"))
        row = {"max_moves": int(budget), "status": plan.status, "kind": plan.kind, "objective": plan.objective}
        if plan.has_plan:
            summary = plan_summary(data, plan.rules, plan.rep_of_account)
            row |= {k: summary[k] for k in ("moved", "moved_potential", "max_workload_deviation",
                                            "max_potential_deviation", "total_distance_km")}
            row["band_excess"] = _band_excess(plan)
        rows.append(row)
    return pl.DataFrame(rows, strict=False)


def _band_excess(plan: TerritoryPlan) -> float:
    """Sum over band violations of excess / target (0 when every band holds)."""
    targets = {"workload_band": plan.rules.workload_band.target, "potential_band": plan.rules.potential_band.target}
    index = {rep: j for j, rep in enumerate(plan.data.rep_ids.tolist())}
    total = 0.0
    for violation in plan.violations:
        if violation.kind in targets:
            target = targets[violation.kind][index[violation.subject]]
            total += violation.excess / target if target > 0 else 0.0
    return total


def parse_pair(text: str, parameter: str) -> tuple[str, str]:
    """``ACCOUNT:REP`` (as the command line takes locks and forbidden pairs)."""
    match = re.fullmatch(r"([^:]+):([^:]+)", text)
    if not match:
        raise InvalidArgument(f"{parameter} must be ACCOUNT_ID:REP_ID; got {text!r}")
    return match.group(1), match.group(2)

