"""Simulation outputs as the rows of ``forecast_summary`` and ``forecast_deals`` (pure).

Each summary row is one (scenario, group, period): the amount already booked, the simulated
open-deal and new-pipeline means, and the distribution of the total (booked + simulated) with
the probability of reaching the target or quota. ``period_kind`` is ``month`` for each month of
the window and ``horizon`` for the whole window. Money is rounded to the cent.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crm_lab.forecast.inputs import (
    ForecastInputs,
    booked_by_period,
    group_labels,
    quota_by_period,
)
from crm_lab.forecast.metrics import QUANTILE_LEVELS
from crm_lab.forecast.periods import day_date, day_number
from crm_lab.forecast.simulation import Portfolio, SimulationOutput

SUMMARY_SCHEMA = {
    "company_id": pl.String, "scenario": pl.String, "group_by": pl.String, "group_value": pl.String,
    "period": pl.String, "period_kind": pl.String, "period_start": pl.Date, "period_end": pl.Date,
    "trials": pl.Int64, "booked": pl.Float64, "open_mean": pl.Float64, "new_mean": pl.Float64,
    "mean": pl.Float64, "sd": pl.Float64, "p05": pl.Float64, "p10": pl.Float64, "p50": pl.Float64,
    "p90": pl.Float64, "p95": pl.Float64, "target": pl.Float64, "p_target": pl.Float64,
    "quota": pl.Float64, "p_quota": pl.Float64,
}
MONEY = ("booked", "open_mean", "new_mean", "mean", "sd", "p05", "p10", "p50", "p90", "p95", "target", "quota")


def with_horizon(per_period: np.ndarray) -> np.ndarray:
    """Append the whole window as a last period: (..., P) -> (..., P + 1) along axis 1 for
    trial arrays, or the last axis for (P,) arrays."""
    if per_period.ndim == 1:
        return np.append(per_period, per_period.sum())
    return np.concatenate([per_period, per_period.sum(axis=1, keepdims=True)], axis=1)


def _periods(inputs: ForecastInputs) -> list[tuple[str, str, object, object]]:
    window = inputs.window
    rows = [(p.label, "month", p.start, p.last_day) for p in window.periods]
    rows.append((window.label, "horizon", window.start, day_date(day_number(window.end) - 1)))
    return rows


def _rows_for(samples: np.ndarray, open_part: np.ndarray, new_part: np.ndarray, booked: np.ndarray,
              quota: np.ndarray | None, target: float | None) -> dict:
    """Statistics over trials for arrays shaped (trials, P + 1, G)."""
    q = np.quantile(samples, QUANTILE_LEVELS, axis=0)
    stats = {
        "booked": np.broadcast_to(booked, samples.shape[1:]),
        "open_mean": open_part.mean(axis=0),
        "new_mean": new_part.mean(axis=0),
        "mean": samples.mean(axis=0),
        "sd": samples.std(axis=0),
        **{name: q[i] for i, name in enumerate(("p05", "p10", "p50", "p90", "p95"))},
    }
    if quota is not None:
        stats["quota"] = np.broadcast_to(quota, samples.shape[1:])
        stats["p_quota"] = np.where(np.isnan(stats["quota"]), np.nan, (samples >= quota[None]).mean(axis=0))
    if target is not None:
        stats["target"] = np.full(samples.shape[1:], float(target))
        stats["p_target"] = (samples >= float(target)).mean(axis=0)
    return stats


def summary_frame(inputs: ForecastInputs, scenario: str, output: SimulationOutput, dims=(),
                  target: float | None = None) -> pl.DataFrame:
    """The summary rows of one company and scenario: the company, then each dimension's groups.
    ``target`` applies to the company's whole window."""
    periods = _periods(inputs)
    frames = []
    booked = with_horizon(booked_by_period(inputs))
    open_part = with_horizon(output.open_totals)[:, :, None]
    new_part = with_horizon(output.new_totals)[:, :, None]
    samples = open_part + new_part + booked[None, :, None]
    quota = quota_by_period(inputs, None)
    stats = _rows_for(samples, open_part, new_part, booked[:, None], with_horizon(quota)[:, None], None)
    if target is not None:
        stats["target"] = np.full(samples.shape[1:], np.nan)
        stats["target"][-1] = float(target)
        stats["p_target"] = np.full(samples.shape[1:], np.nan)
        stats["p_target"][-1] = float((samples[:, -1, 0] >= float(target)).mean())
    frames.append(_frame(inputs, scenario, "company", [inputs.company_id], periods, stats, output.trials))
    for dim in dims:
        labels = group_labels(inputs, dim)
        group = output.group_totals[dim]
        group = np.concatenate([group, group.sum(axis=1, keepdims=True)], axis=1)
        booked_g = booked_by_period(inputs, dim)
        booked_g = np.vstack([booked_g, booked_g.sum(axis=0, keepdims=True)])
        quota_g = quota_by_period(inputs, dim)
        if quota_g is not None:
            quota_g = np.vstack([quota_g, quota_g.sum(axis=0, keepdims=True)])
        samples_g = group + booked_g[None]
        # The split of a group's total into open deals and new pipeline is not kept per group.
        nan = np.full_like(group, np.nan)
        stats = _rows_for(samples_g, nan, nan, booked_g, quota_g, None)
        frames.append(_frame(inputs, scenario, dim, list(labels), periods, stats, output.trials))
    return pl.concat(frames, how="vertical")


def _frame(inputs, scenario, group_by, labels, periods, stats, trials) -> pl.DataFrame:
    n_periods, n_groups = len(periods), len(labels)
    columns = {
        "company_id": [inputs.company_id] * (n_periods * n_groups),
        "scenario": [scenario] * (n_periods * n_groups),
        "group_by": [group_by] * (n_periods * n_groups),
        "group_value": [label for _ in periods for label in labels],
        "period": [p[0] for p in periods for _ in labels],
        "period_kind": [p[1] for p in periods for _ in labels],
        "period_start": [p[2] for p in periods for _ in labels],
        "period_end": [p[3] for p in periods for _ in labels],
        "trials": [trials] * (n_periods * n_groups),
    }
    for name in SUMMARY_SCHEMA:
        if name in columns:
            continue
        value = stats.get(name)
        columns[name] = np.full(n_periods * n_groups, np.nan) if value is None else np.asarray(value, dtype=np.float64).ravel()
    frame = pl.DataFrame(columns, schema=SUMMARY_SCHEMA)
    floats = [c for c, kind in SUMMARY_SCHEMA.items() if kind == pl.Float64]
    return frame.with_columns(pl.col(floats).fill_nan(None)).with_columns(pl.col(list(MONEY)).round(2))


def deals_frame(inputs: ForecastInputs, scenario: str, portfolio: Portfolio, output: SimulationOutput) -> pl.DataFrame:
    """One row per open deal and period (and the whole window): the probability it books then
    and its expected booked amount."""
    periods = _periods(inputs)
    wins = with_horizon(output.deal_wins.astype(np.float64)) / output.trials
    value = with_horizon(output.deal_value) / output.trials
    deals = inputs.deals
    p_win = np.minimum(portfolio.win_probability * portfolio.win_multiplier, 1.0)
    base = deals.select(
        "company_id", "deal_id", "owner_rep_id", "team", "territory_id", "stage", "amount", "expected_close_date", "age_days"
    ).with_columns(pl.lit(scenario).alias("scenario"), pl.Series("win_probability", p_win))
    parts = []
    for k, (label, kind, start, end) in enumerate(periods):
        parts.append(base.with_columns(
            pl.lit(label).alias("period"), pl.lit(kind).alias("period_kind"),
            pl.lit(start).alias("period_start"), pl.lit(end).alias("period_end"),
            pl.Series("p_close", wins[:, k]), pl.Series("expected_value", value[:, k]),
        ))
    return pl.concat(parts, how="vertical").with_columns(
        pl.col("amount").round(2), pl.col("expected_value").round(2)
    )


def horizon_samples(inputs: ForecastInputs, output: SimulationOutput) -> np.ndarray:
    """Per trial and period, the company's total including bookings: (trials, P)."""
    return output.totals() + booked_by_period(inputs)[None, :]
