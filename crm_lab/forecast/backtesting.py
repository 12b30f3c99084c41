"""``crm-lab backtest``: forecast past windows with only what was known at each as-of, and score
the forecasts against what was booked, beside the weighted-pipeline baseline.

At each as-of the model is fitted on the snapshots and closes up to that instant (history read
once up to the last window's end is cut per as-of by the fit), the open deals are those of that
instant, and the forecast covers the calendar window holding the as-of day (``horizon``). The
actual is every win in the window. The baseline is what a CRM's forecast tab shows: bookings so
far plus each open deal whose expected close date falls in the window at its stage's
historical win rate (the same fitted stage rates), with the interval of a gamma distribution of
the mean and variance of independent wins (bookings cannot go below what is booked, as a
normal approximation's P05 did).

Scores per forecast: P10-P90 coverage, pinball loss at 0.1, 0.5 and 0.9, CRPS, PIT and the error
of the mean; :meth:`BacktestResult.summary` averages them per company and method (never across companies,
whose amounts may be in different currencies) and
:meth:`BacktestResult.calibration` tabulates how often the actual fell below each quantile.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from crm_lab.db import DEFAULT_DB, check_writable, reading
from crm_lab.errors import InvalidArgument
from crm_lab.forecast.data import check_replayed, read_histories, read_open_deals
from crm_lab.forecast.estimate import ModelOptions, NoWonDeal
from crm_lab.forecast.inputs import (
    GROUP_COLUMNS,
    ForecastInputs,
    booked_by_period,
    check_dimensions,
    gather_inputs,
    group_labels,
    portfolio,
)
from crm_lab.forecast.metrics import PINBALL_LEVELS, QUANTILE_LEVELS, Score, score_gamma, score_samples, weighted_pipeline
from crm_lab.forecast.periods import as_of_dates, date_days, day_date, day_number, forecast_window
from crm_lab.forecast.run import cannot_learn_text, check_count, earliest_usable_as_of
from crm_lab.forecast.simulation import simulate
from crm_lab.forecast.store import FORECAST_TABLES, run_frames
from crm_lab.results import store_frames
from crm_lab.runs import RunRecord, input_fingerprint

METHODS = ("monte_carlo", "weighted_pipeline")
BACKTEST_SCHEMA = {
    "company_id": pl.String, "as_of": pl.Datetime("us", "UTC"), "horizon": pl.String, "window_start": pl.Date,
    "window_end": pl.Date, "group_by": pl.String, "group_value": pl.String, "method": pl.String,
    "actual": pl.Float64, "booked": pl.Float64, "mean": pl.Float64, "p05": pl.Float64, "p10": pl.Float64,
    "p50": pl.Float64, "p90": pl.Float64, "p95": pl.Float64, "covered": pl.Boolean, "pit": pl.Float64,
    "pinball_10": pl.Float64, "pinball_50": pl.Float64, "pinball_90": pl.Float64, "crps": pl.Float64,
    "error": pl.Float64,
}


def _row(case: ForecastInputs, group_by: str, group_value: str, method: str, score: Score, booked: float) -> dict:
    w = case.window
    return {
        "company_id": case.company_id, "as_of": w.as_of, "horizon": w.horizon, "window_start": w.start,
        "window_end": day_date(day_number(w.end) - 1), "group_by": group_by, "group_value": group_value,
        "method": method, "actual": score.actual, "booked": booked, "mean": score.mean,
        **{name: score.quantiles[level] for name, level in zip(("p05", "p10", "p50", "p90", "p95"), QUANTILE_LEVELS)},
        "covered": score.covered, "pit": score.pit,
        **{f"pinball_{int(level * 100)}": score.pinball(level) for level in PINBALL_LEVELS},
        "crps": score.crps, "error": score.mean - score.actual,
    }


def baseline_deals(case: ForecastInputs) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """The weighted pipeline's deals (open, expected to close in the window), their stage win
    rates and amounts."""
    deals = case.deals
    ecd = date_days(deals["expected_close_date"].to_numpy())
    inside = (ecd >= day_number(case.window.start)) & (ecd < day_number(case.window.end))
    chosen = deals.filter(pl.Series(inside))
    p = case.model.win_rates_.stage_rate(chosen["stage"].to_list())
    amount = np.nan_to_num(chosen["amount"].to_numpy().astype(np.float64), nan=0.0)
    return p, amount, chosen


def score_case(case: ForecastInputs, wins: pl.DataFrame, *, trials: int, seed: int, dims=()) -> list[dict]:
    """Forecast one company's window and score it and the baseline against ``wins`` (every win
    of the company, known after the fact)."""
    w = case.window
    in_window = wins.filter((pl.col("closed_at") >= w.start_instant) & (pl.col("closed_at") <= w.end_instant))
    stream = zlib.crc32(f"{case.company_id}|{w.as_of.isoformat()}".encode())
    port = portfolio(case, None, dims)
    out = simulate([port], trials=trials, seed=seed, stream=stream, per_deal=False)[0]
    booked = float(booked_by_period(case).sum())
    samples = out.totals().sum(axis=1) + booked
    actual = float(in_window["amount"].sum())
    p, amount, chosen = baseline_deals(case)
    mean, sd = weighted_pipeline(p, amount)
    rows = [
        _row(case, "company", case.company_id, "monte_carlo", score_samples(samples, actual), booked),
        _row(case, "company", case.company_id, "weighted_pipeline", score_gamma(mean, sd, actual, shift=booked), booked),
    ]
    for dim in dims:
        labels = group_labels(case, dim)
        column = GROUP_COLUMNS[dim]
        group_samples = out.group_totals[dim].sum(axis=1)
        group_booked = booked_by_period(case, dim).sum(axis=0)
        for g, label in enumerate(labels):
            mine = pl.col(column).fill_null("(none)") == label
            actual_g = float(in_window.filter(mine)["amount"].sum())
            rows.append(_row(case, dim, label, "monte_carlo", score_samples(group_samples[:, g] + group_booked[g], actual_g),
                             float(group_booked[g])))
            here = (chosen[column].fill_null("(none)") == label).to_numpy()
            mean_g, sd_g = weighted_pipeline(p[here], amount[here])
            rows.append(_row(case, dim, label, "weighted_pipeline",
                             score_gamma(mean_g, sd_g, actual_g, shift=float(group_booked[g])), float(group_booked[g])))
    return rows


@dataclass
class BacktestResult:
    """The scored forecasts of a backtest run (``rows``: the forecast_backtest columns)."""

    record: RunRecord
    rows: pl.DataFrame
    as_ofs: list[dt.datetime]
    horizon: str
    stored: bool = False
    currencies: dict = field(default_factory=dict)  # company_id -> currency (None: not named in the data)
    skipped: dict = field(default_factory=dict)  # company_id -> (as-of dates skipped, why)
    models: dict = field(default_factory=dict)  # "company as-of" -> the fitted model (or why it was skipped)

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def frames(self) -> dict[str, pl.DataFrame]:
        """The rows this run stores, per table: its ``forecast_runs`` row and ``forecast_backtest``
        (see :func:`crm_lab.forecast.store.run_frames`)."""
        parameters = self.record.parameters
        run = {
            "kind": "backtest", "as_of": self.as_ofs[0], "as_of_last": self.as_ofs[-1], "horizon": self.horizon,
            "window_start": None, "window_end": None, "trials": parameters["trials"], "scenarios": ["baseline"],
            "group_by": list(parameters["by"]), "target": None, "models": self.models,
        }
        money = ("actual", "booked", "mean", "p05", "p10", "p50", "p90", "p95")
        return run_frames(self.record, run, {"forecast_backtest": self.rows.with_columns(pl.col(*money).round(2))})

    def summary(self, group_by: str = "company") -> pl.DataFrame:
        """Per company and method (amounts are never averaged across companies, which may book
        in different currencies): the company's currency, forecasts scored, P10-P90 coverage,
        mean pinball losses, mean CRPS, mean absolute error and bias of the mean."""
        return summarize_backtest(self.rows, group_by, self.currencies)

    def calibration(self, group_by: str = "company") -> pl.DataFrame:
        """Per method and nominal level: how often the actual was at or below that quantile."""
        return calibration_table(self.rows, group_by)

    def describe(self) -> str:
        first, last = self.as_ofs[0], self.as_ofs[-1]
        lines = [
            f"backtest {self.run_id}: {len(self.as_ofs)} as-of dates from {first.date()} to {last.date()}, "
            f"horizon {self.horizon}" + ("" if self.stored else " (not stored)")
        ]
        summary = self.summary()
        for row in summary.iter_rows(named=True):
            company = row["company_id"] + (f" ({row['currency']})" if row["currency"] else "")
            lines.append(
                f"  {company} {row['method']:<17} forecasts {row['forecasts']:>3}  coverage P10-P90 {row['coverage_p10_p90']:.0%}  "
                f"CRPS {row['crps']:,.0f}  pinball 10/50/90 {row['pinball_10']:,.0f}/{row['pinball_50']:,.0f}/"
                f"{row['pinball_90']:,.0f}  MAE {row['mae']:,.0f}  bias {row['bias']:+,.0f}"
            )
        for company_id, (dates, reason) in self.skipped.items():
            lines.append(f"  {company_id} skipped at {len(dates)} as-of date(s) ({', '.join(d.date().isoformat() for d in dates)}): {reason}")
        scored = summary["company_id"].unique(maintain_order=True).to_list()
        over = f"company {scored[0]}" if len(scored) == 1 else f"the {len(scored)} companies"
        lines.append(f"calibration over {over} (share of actuals at or below each forecast quantile):")
        table = self.calibration()
        for method in METHODS:
            part = table.filter(pl.col("method") == method)
            cells = "  ".join(f"P{int(l * 100):02d} {s:.0%}" for l, s in zip(part["level"], part["share_below"]))
            lines.append(f"  {method:<17} {cells}")
        if self.stored:
            lines.append(f"rows: SELECT * FROM forecast_backtest WHERE run_id = '{self.run_id}'")
        return "\n".join(lines)


def summarize_backtest(rows: pl.DataFrame, group_by: str = "company", currencies: dict | None = None) -> pl.DataFrame:
    """Scores per company and method: the money scores (CRPS, pinball, MAE, bias) are in each
    company's currency, so they are averaged within a company only."""
    currencies = currencies or {}
    return (
        rows.filter(pl.col("group_by") == group_by)
        .group_by("company_id", "method")
        .agg(
            pl.len().alias("forecasts"),
            pl.col("covered").mean().alias("coverage_p10_p90"),
            pl.col("pinball_10").mean(), pl.col("pinball_50").mean(), pl.col("pinball_90").mean(),
            pl.col("crps").mean(),
            pl.col("error").abs().mean().alias("mae"),
            pl.col("error").mean().alias("bias"),
            pl.col("actual").mean().alias("mean_actual"),
        )
        .with_columns(pl.col("company_id").replace_strict(currencies, default=None, return_dtype=pl.String).alias("currency"))
        .select("company_id", "currency", pl.exclude("company_id", "currency"))
        .sort("company_id", pl.col("method").replace_strict({m: i for i, m in enumerate(METHODS)}, return_dtype=pl.Int64))
    )


def calibration_table(rows: pl.DataFrame, group_by: str = "company") -> pl.DataFrame:
    part = rows.filter(pl.col("group_by") == group_by)
    records = []
    for method in METHODS:
        mine = part.filter(pl.col("method") == method)
        for level, name in zip(QUANTILE_LEVELS, ("p05", "p10", "p50", "p90", "p95")):
            share = float((mine["actual"] <= mine[name]).mean()) if mine.height else float("nan")
            records.append({"method": method, "level": level, "share_below": share, "forecasts": mine.height})
    return pl.DataFrame(records)


def backtest(
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    start,
    stop,
    every: str = "month",
    horizon: str = "month",
    trials: int = 4000,
    seed: int = 0,
    company: str | None = None,
    by=(),
    model_options: dict | None = None,
    store: bool = True,
    lock_timeout: float | None = None,
) -> BacktestResult:
    """Backtest the forecast at as-of dates from ``start`` to ``stop``.

    Parameters
    ----------
    db_path : path
    start, stop : date or str
        The first as-of and the last allowed one (dates mean midnight at their start).
    every : {"week", "month", "quarter"}
    horizon : {"month", "quarter", "year"}
        The calendar window each forecast covers (the one holding the as-of day).
    trials, seed : int
    company : str, optional
    by : str or sequence of {"team", "rep", "territory"}
        Score these groups too.
    model_options : dict, optional
    store : bool
        Write ``forecast_runs`` and ``forecast_backtest``.

    Returns
    -------
    BacktestResult
    """
    if store:
        check_writable(db_path)  # before the simulation, not after it
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.timezone.utc)
    trials = check_count("trials", trials, 1)
    seed = check_count("seed", seed, 0)
    dims = check_dimensions(by)
    if "stage" in dims:
        raise InvalidArgument("by: a backtest cannot score by stage (a win's stage at the as-of is not an actual); use team, rep or territory")
    if horizon not in ("month", "quarter", "year"):
        raise InvalidArgument(f"horizon must be one of month, quarter, year for a backtest, got {horizon!r}")
    options = ModelOptions.from_dict(model_options)
    as_ofs = as_of_dates(start, stop, every)
    windows = [forecast_window(a, horizon) for a in as_ofs]
    until = max(w.end_instant for w in windows)
    rows = []
    models = {}
    currencies: dict = {}
    with reading(db_path, lock_timeout=lock_timeout) as con:
        check_replayed(con)
        fingerprint = input_fingerprint(con)
        histories = read_histories(con, until=until, company=company)
        last_event = con.sql("SELECT max(valid_from) FROM deal_history").fetchall()[0][0]
        if last_event is None or last_event < until - dt.timedelta(days=2):
            raise InvalidArgument(
                f"stop {as_ofs[-1].date()}: its window ends {until.date()}, after the data ends ({last_event}); "
                "the actuals would be incomplete"
            )
        failed: dict = {}  # company_id -> [NoWonDeal at each as-of it could not be forecast]
        for window in windows:
            open_deals = read_open_deals(con, window.as_of, company)
            for history in histories.values():
                try:
                    case = gather_inputs(history, open_deals, window, options)
                except NoWonDeal as error:
                    failed.setdefault(history.company_id, []).append(error)
                    continue
                currencies[history.company_id] = case.currency or currencies.get(history.company_id)
                rows.extend(score_case(case, history.wins, trials=trials, seed=seed, dims=dims))
                models[f"{history.company_id} {window.as_of.isoformat()}"] = case.model.describe()
        skipped = {}
        if failed:
            earliest = earliest_usable_as_of(con, list(failed), options.outcome_window_days)
            for company_id, errors in failed.items():
                # The last as-of it failed at: the earliest usable --from is after every failure.
                skipped[company_id] = ([e.as_of for e in errors],
                                       cannot_learn_text(errors[-1], earliest[company_id], "--from", "start"))
            if company is not None or not rows:
                texts = [reason for _, reason in skipped.values()]
                raise InvalidArgument(texts[0] if len(texts) == 1 else "\n".join(
                    ["no company can be backtested: pick a later --from (start= in Python)"] + [f"  {t}" for t in texts]
                ))
            for company_id, (dates, reason) in skipped.items():
                for when in dates:  # the run record says which forecasts were left out, and why
                    models[f"{company_id} {when.isoformat()}"] = {"skipped": reason}
    frame = pl.DataFrame(rows, schema=BACKTEST_SCHEMA)
    parameters = {
        "start": as_ofs[0], "stop": stop, "every": every, "horizon": horizon, "trials": trials, "seed": seed,
        "company": company, "by": list(dims), "model_options": model_options or {},
    }
    record = RunRecord(kind="backtest", parameters=parameters, input_fingerprint=fingerprint, company_id=company,
                       seed=seed, started_at=started_at)
    result = BacktestResult(record, frame, as_ofs, horizon, currencies=currencies, skipped=skipped, models=models)
    record.seconds = time.perf_counter() - started
    if store:
        store_frames(db_path, result.frames(), tables=FORECAST_TABLES, lock_timeout=lock_timeout)
        result.stored = True
    return result
