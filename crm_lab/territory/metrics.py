"""What a plan looks like: per-rep loads against their bands, per-account rows with moves, and
the headline figures (balance, distance, moves) that plans are compared by."""

from __future__ import annotations

import numpy as np
import polars as pl

from crm_lab.territory.check import rep_sums
from crm_lab.territory.data import TerritoryData
from crm_lab.territory.rules import Rules

SUMMARY_FIELDS = (
    "accounts", "reps", "moved", "moved_potential", "reassigned", "total_distance_km", "mean_distance_km",
    "max_workload_deviation", "max_potential_deviation", "max_capacity_use",
)


def _deviation(value: np.ndarray, target: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(target > 0, value / target - 1.0, 0.0)


def rep_loads(data: TerritoryData, rules: Rules, rep_of_account) -> pl.DataFrame:
    """One row per rep: accounts, workload and potential with their targets and bands, the
    relative deviation from target, capacity use and distance."""
    plan = np.asarray(rep_of_account, dtype=np.int64)
    m = data.n_reps
    workload = rep_sums(plan, rules.workload, m)
    potential = rep_sums(plan, rules.potential, m)
    distance = rep_sums(plan, rules.distance_km, m)
    accounts = np.bincount(plan[plan >= 0], minlength=m)
    wb, pb = rules.workload_band, rules.potential_band
    with np.errstate(divide="ignore", invalid="ignore"):
        capacity_use = np.where(np.isfinite(rules.capacity) & (rules.capacity > 0), workload / rules.capacity, np.nan)
        mean_distance = np.where(accounts > 0, distance / np.maximum(accounts, 1), np.nan)
    unknown = np.full(m, np.nan)

    def known(values, flag: bool):  # NaN where the input is missing, never a made-up 0
        return np.asarray(values, dtype=float) if flag else unknown
    w, p, d = rules.has_workload, rules.has_potential, rules.has_distance
    return pl.DataFrame({
        "rep_id": data.rep_ids.tolist(),
        "is_new": data.rep_is_new.tolist(),
        "fte": data.fte,
        "capacity_hours": rules.capacity,
        "accounts": accounts.astype(np.int64),
        "workload_hours": known(workload, w),
        "workload_target": known(wb.target, w),
        "workload_lower": known(wb.lower, w),
        "workload_upper": known(wb.upper, w),
        "workload_deviation": known(_deviation(workload, wb.target), w),
        "capacity_use": known(capacity_use, w),
        "potential": known(potential, p),
        "potential_target": known(pb.target, p),
        "potential_lower": known(pb.lower, p),
        "potential_upper": known(pb.upper, p),
        "potential_deviation": known(_deviation(potential, pb.target), p),
        "distance_km": known(distance, d),
        "mean_distance_km": known(mean_distance, d),
    }, strict=False)


def account_rows(data: TerritoryData, rules: Rules, rep_of_account) -> pl.DataFrame:
    """One row per account: its rep in the plan, its current rep, whether it moved (left a
    current rep who is in the plan) or was reassigned (had no current rep in the plan), locked,
    distance, workload and potential."""
    plan = np.asarray(rep_of_account, dtype=np.int64)
    assigned = plan >= 0
    rows = np.arange(data.n_accounts)
    cols = np.where(assigned, plan, 0)
    rep_ids = np.where(assigned, data.rep_ids[cols], None)
    moved = assigned & rules.moved[rows, cols]
    reassigned = assigned & (rules.current < 0)
    return pl.DataFrame({
        "account_id": data.account_ids.tolist(),
        "rep_id": rep_ids.tolist(),
        "previous_rep_id": [None if r is None else str(r) for r in data.current_rep.tolist()],
        "moved": moved.tolist(),
        "reassigned": reassigned.tolist(),
        "locked": (rules.locked_to >= 0).tolist(),
        "distance_km": np.where(assigned & rules.has_distance & ~np.isnan(data.account_lat + data.account_lon),
                                rules.distance_km[rows, cols], np.nan),
        "workload_hours": np.where(assigned & rules.has_workload, rules.workload[rows, cols], np.nan),
        "potential": rules.potential if rules.has_potential else np.full(data.n_accounts, np.nan),
        "lat": data.account_lat,
        "lon": data.account_lon,
    }, schema_overrides={"rep_id": pl.String, "previous_rep_id": pl.String}, strict=False)


def plan_summary(data: TerritoryData, rules: Rules, rep_of_account) -> dict:
    """Headline figures of a plan (the keys of :data:`SUMMARY_FIELDS`); a figure whose input is
    missing (no workload, potential or locations) is None, not 0."""
    plan = np.asarray(rep_of_account, dtype=np.int64)
    loads = rep_loads(data, rules, plan)
    rows = np.flatnonzero(plan >= 0)
    moved = rules.moved[rows, plan[rows]]
    distance = rules.distance_km[rows, plan[rows]]

    def largest(column: str):
        values = np.abs(loads[column].to_numpy())
        return float(np.nanmax(values)) if len(values) and not np.isnan(values).all() else None
    return {
        "accounts": int(len(rows)),
        "reps": int(data.n_reps),
        "moved": int(moved.sum()),
        "moved_potential": float(rules.potential[rows][moved].sum()) if rules.has_potential else None,
        "reassigned": int((rules.current[rows] < 0).sum()),
        "total_distance_km": float(distance.sum()) if rules.has_distance else None,
        "mean_distance_km": float(distance.mean()) if len(rows) and rules.has_distance else None,
        "max_workload_deviation": largest("workload_deviation") if rules.has_workload else None,
        "max_potential_deviation": largest("potential_deviation") if rules.has_potential else None,
        "max_capacity_use": (largest("capacity_use") or 0.0) if rules.has_workload else None,
    }
