"""Store lead threshold studies: ``lead_sweep_runs`` (one run record per company) and
``lead_sweeps`` (one row per cut-off), written in one short transaction."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from crm_lab.db import DEFAULT_DB, transaction
from crm_lab.leads.analysis import LeadSweepResult, analyse_leads
from crm_lab.runs import RunRecord, insert_frame
from crm_lab.schema import schema_sql, table_spec

RUNS_TABLE = "lead_sweep_runs"
SWEEPS_TABLE = "lead_sweeps"
RUN_KIND = "leads"


@dataclass(frozen=True)
class SweepLeadsReport:
    """What ``crm-lab sweep-leads`` did: the studies and the run ids they were stored under."""

    db_path: Path
    results: tuple[LeadSweepResult, ...]
    run_ids: tuple[str, ...]

    def summary(self) -> str:
        lines = []
        for run_id, result in zip(self.run_ids, self.results):
            lines.append(f"run {run_id}")
            lines.append(result.summary())
        ids = ", ".join(f"'{run_id}'" for run_id in self.run_ids)
        lines.append(f"curves: SELECT * FROM {SWEEPS_TABLE} WHERE run_id IN ({ids}) ORDER BY run_id, threshold DESC")
        return "\n".join(lines)


def sweep_leads(
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    company: str | None = None,
    lock_timeout: float | None = None,
    **settings: Any,
) -> SweepLeadsReport:
    """``crm-lab sweep-leads``: run the lead threshold study and store it.

    Reads with a read-only connection, computes, then writes ``lead_sweep_runs`` and
    ``lead_sweeps`` in one transaction, holding the file only for the write.

    Parameters
    ----------
    db_path : path
        A loaded and replayed workbench database.
    company : str, optional
        One company; None for each company with leads (one run each).
    lock_timeout : float, optional
        Seconds to wait for another process's lock.
    **settings
        The fields of :class:`crm_lab.leads.LeadSweepSettings`: ``as_of`` (required),
        ``capacity_hours``, ``hours_per_lead``, ``cost_per_lead``, ``objective``, ``beta``,
        ``test_days``, ``maturity_days``, ``score_source``, ``deal_value``, ``win_rate``,
        ``C``, ``replicates``, ``level``, ``seed``, ``bins``.

    Examples
    --------
    >>> from crm_lab.leads import sweep_leads
    >>> report = sweep_leads("data/crm.duckdb", as_of="2025-10-01", capacity_hours=400,
    ...                      hours_per_lead=1.5, cost_per_lead=60)  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    results = analyse_leads(db_path, company=company, lock_timeout=lock_timeout, **settings)
    run_ids = write_results(db_path, results, parameters={"company": company, **settings}, lock_timeout=lock_timeout)
    return SweepLeadsReport(Path(db_path), tuple(results), run_ids)


def write_results(
    db_path: str | os.PathLike,
    results: Sequence[LeadSweepResult],
    *,
    parameters: dict[str, Any] | None = None,
    lock_timeout: float | None = None,
) -> tuple[str, ...]:
    """Store studies (all or nothing); returns their run ids. ``parameters`` are the arguments as
    given (default: each study's settings)."""
    records = [
        RunRecord(
            kind=RUN_KIND,
            parameters=parameters if parameters is not None else result.settings.parameters(),
            input_fingerprint=result.input_fingerprint,
            company_id=result.company_id,
            seed=result.settings.seed,
            started_at=result.started_at,
            seconds=result.seconds,
        )
        for result in results
    ]
    with transaction(db_path, lock_timeout=lock_timeout) as con:
        con.execute(schema_sql(RUNS_TABLE))
        con.execute(schema_sql(SWEEPS_TABLE))
        for record, result in zip(records, results):
            row = run_row(result, record)
            columns = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            con.execute(f"INSERT INTO {RUNS_TABLE} ({columns}) VALUES ({marks})", list(row.values()))
            insert_frame(con, SWEEPS_TABLE, sweep_rows(result, record.run_id))
    return tuple(record.run_id for record in records)


def sweep_rows(result: LeadSweepResult, run_id: str) -> pl.DataFrame:
    """The ``lead_sweeps`` rows of a study, in the table's column order."""
    columns = [column.name for column in table_spec(SWEEPS_TABLE).columns]
    return result.table.with_columns(run_id=pl.lit(run_id), company_id=pl.lit(result.company_id)).select(columns)


def run_row(result: LeadSweepResult, record: RunRecord) -> dict[str, Any]:
    """The ``lead_sweep_runs`` row of a study, by column name."""
    s, boot, choice, calibration = result.settings, result.bootstrap, result.choice, result.calibration
    head = dict(zip(
        ("run_id", "company_id", "started_at", "seconds", "parameters", "seed", "crm_lab_version", "input_fingerprint"),
        record.values(),
    ))
    model = result.model
    return {
        **head,
        "as_of": result.as_of,
        "train_cutoff": result.train_cutoff,
        "score_source": s.score_source,
        "objective": s.objective,
        "beta": s.beta,
        "capacity_hours": s.capacity_hours,
        "hours_per_lead": s.hours_per_lead,
        "cost_per_lead": s.cost_per_lead,
        "deal_value": result.deal_value,
        "deal_value_source": result.deal_value_source,
        "win_rate": result.win_rate,
        "win_rate_source": result.win_rate_source,
        "history_closed_deals": result.economics.closed_deals,
        "history_won_deals": result.economics.won_deals,
        "train_leads": result.train.height if model is not None else None,
        "train_conversions": int(result.train["converted"].sum()) if model is not None else None,
        "swept_leads": result.test.height,
        "swept_conversions": int(result.test["converted"].sum()),
        "thresholds": result.curve.height,
        "auc": result.auc,
        "brier": calibration.brier if calibration else None,
        "log_loss": calibration.log_loss if calibration else None,
        "mean_predicted": calibration.mean_predicted if calibration else None,
        "observed_rate": float(result.test["converted"].mean()),
        "model": None if model is None else json.dumps(_model_record(result)),
        "chosen_threshold": choice.threshold,
        "chosen_routed": choice.routed,
        "chosen_value": choice.value,
        "chosen_profit": None if choice.routes_nobody else choice.row["profit"],
        "chosen_threshold_lo": boot.threshold_interval[0],
        "chosen_threshold_hi": boot.threshold_interval[1],
        "chosen_value_lo": boot.value_interval[0],
        "chosen_value_hi": boot.value_interval[1],
        "replicates": boot.replicates,
        "level": boot.level,
        "open_leads": result.open_leads.height,
        "open_leads_routed": result.open_leads_routed,
    }


def _model_record(result: LeadSweepResult) -> dict[str, Any]:
    model = result.model
    return {
        "kind": "l2_logistic_regression",
        "settings": model.get_params(),
        "intercept": model.intercept_,
        "intercept_std_error": model.intercept_std_error_,
        "coefficients": dict(zip(model.feature_names_, model.coef_.tolist())),
        "std_errors": dict(zip(model.feature_names_, model.std_errors_.tolist())),
        "reference_levels": {column: levels[0] for column, levels in model.levels_.items()},
        "iterations": model.n_iter_,
        "converged": bool(model.converged_),
    }
