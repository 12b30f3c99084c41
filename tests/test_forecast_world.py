"""The forecast on a generated world: the estimators recover the generator's truth, nothing
after the as-of leaks into a fit, runs are stored and reproducible, bad input is named."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from crm_lab.errors import CrmLabError, InvalidArgument
from crm_lab.forecast import forecast, prepare, run_scenarios, tornado
from crm_lab.forecast.data import read_histories
from crm_lab.forecast.estimate import ForecastModel
from crm_lab.load import load
from crm_lab.replay import replay
from crm_lab.runs import RUN_COLUMNS_SQL
from tests.conftest import event, query, write_jsonl
from tests.forecast_world import built_world, copy_of

AS_OF = "2025-04-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return built_world(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def fitted(world):
    """Each company's model fitted on the whole history (as of the export)."""
    db, _ = world
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    try:
        histories = read_histories(con, until="2026-01-01")
    finally:
        con.close()
    return {c: ForecastModel().fit(h, "2026-01-01") for c, h in histories.items()}


# ------------------------------------------------------------------------------- truth recovery


def test_stage_win_rates_recover_the_generator_truth(world, fitted):
    _, truth = world
    for company, model in fitted.items():
        for row in model.win_rates_.stage_rates_.iter_rows(named=True):
            expected = truth["win_probability_from_stage"][row["stage"]]
            standard_error = math.sqrt(expected * (1 - expected) / row["deals"])
            assert abs(row["rate"] - expected) < 3.5 * standard_error, (company, row, expected)


def test_time_to_close_of_a_win_in_the_last_stage_recovers_the_stage_duration(world, fitted):
    """A weekly snapshot catches a negotiation visit with probability proportional to its length,
    at a uniform point of it: the time left has mean E[D^2] / (2 E[D]) for the lognormal D."""
    _, truth = world
    deals = truth["parameters"]["deals"]
    last = deals["stages"].index("negotiation")
    median, sigma = deals["stage_duration_days_lognormal_median"][last], deals["stage_duration_days_lognormal_sigma"][last]
    expected = median * math.exp(1.5 * sigma**2) / 2
    for company, model in fitted.items():
        wins = model.labels_.filter((pl.col("stage") == "negotiation") & (pl.col("won") == 1) & (pl.col("weight") > 0))
        days = (wins["closed_at"] - wins["snapshot_at"]).dt.total_seconds().to_numpy() / 86400
        mean = np.average(days, weights=wins["weight"].to_numpy())
        assert abs(mean - expected) < 1.5, (company, mean, expected)


def test_amount_change_at_close_recovers_the_generator_truth(world, fitted):
    """From the middle of a negotiation visit a win still sees the visit's amount changes that
    fall after that point (Poisson per visit, a share of them at the exit) and the change at the
    win itself."""
    _, truth = world
    deals = truth["parameters"]["deals"]
    last = deals["stages"].index("negotiation")
    changes = deals["amount_change_poisson_mean_per_stage_visit"][last]
    at_exit = deals["tie_probability"]
    remaining = changes * (at_exit + (1 - at_exit) / 2)
    expected_log = remaining * deals["amount_change_log_factor_mean"][last] + \
        deals["won_amount_probability"] * deals["won_amount_log_factor_mean"]
    expected_unchanged = math.exp(-remaining) * (1 - deals["won_amount_probability"])
    for company, model in fitted.items():
        row = model.amount_change_.rows_for(["negotiation"])[0]
        quantiles = model.amount_change_.quantiles_[row]
        assert np.mean(np.log(quantiles)) == pytest.approx(expected_log, abs=0.015), company
        assert np.mean(quantiles == 1.0) == pytest.approx(expected_unchanged, abs=0.08), company


# ---------------------------------------------------------------------------------- no leakage


def truncated_world(world_dir: Path, out: Path, until: str) -> Path:
    """The same export with only the events that occurred at or before ``until``."""
    out.mkdir(parents=True, exist_ok=True)
    for path in world_dir.glob("*.parquet"):
        if path.name != "events.parquet":
            shutil.copyfile(path, out / path.name)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{world_dir / 'events.parquet'}') "
        f"WHERE occurred_at <= TIMESTAMPTZ '{until}') TO '{out / 'events.parquet'}' (FORMAT parquet)"
    )
    con.close()
    return out


def model_state(model: ForecastModel) -> dict:
    return {
        "stage": model.win_rates_.stage_rates_, "cells": model.win_rates_.cell_rates_,
        "timing": model.close_timing_.cdf_, "amount": model.amount_change_.quantiles_,
        "new_rate": model.new_pipeline_.daily_rate_, "new_sizes": model.new_pipeline_.sizes_,
        "season": model.new_pipeline_.season_index_, "shape": model.new_pipeline_.gamma_shape_,
    }


def assert_same_state(a: dict, b: dict) -> None:
    for key in a:
        if isinstance(a[key], pl.DataFrame):
            assert a[key].equals(b[key]), key
        else:
            assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key


def test_a_fit_and_forecast_see_nothing_after_the_as_of(world, tmp_path):
    """Fitting on the whole database as of T gives exactly what a database that never saw an
    event after T gives: same learned numbers, same forecast."""
    db, _ = world
    cut = truncated_world(db.parent / "world", tmp_path / "cut", f"{AS_OF} 00:00:00+00")
    cut_db = tmp_path / "cut.duckdb"
    load(cut_db, [cut])
    replay(cut_db)
    full = prepare(db, as_of=AS_OF, horizon="quarter")
    past = prepare(cut_db, as_of=AS_OF, horizon="quarter")
    for a, b in zip(full, past):
        assert a.company_id == b.company_id
        assert_same_state(model_state(a.model), model_state(b.model))
        assert a.deals.equals(b.deals)
    one = run_scenarios(full, trials=1500, seed=3).summary
    two = run_scenarios(past, trials=1500, seed=3).summary
    assert one.equals(two)


def test_a_history_read_further_is_cut_back_to_the_as_of(world):
    """A backtest reads once up to its last window; each as-of's fit must equal a fit on a read
    that stopped at the as-of."""
    db, _ = world
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    try:
        long = read_histories(con, until="2025-12-31")
        short = read_histories(con, until=AS_OF)
    finally:
        con.close()
    for company in long:
        a = ForecastModel().fit(long[company], AS_OF)
        b = ForecastModel().fit(short[company], AS_OF)
        assert_same_state(model_state(a), model_state(b))


# ------------------------------------------------------------------------- stored, reproducible


def test_a_forecast_run_is_stored_with_its_run_id_on_every_row(world, tmp_path):
    db = copy_of(world[0], tmp_path / "crm.duckdb")
    scenario = tmp_path / "what-if.yaml"
    scenario.write_text("- {name: better, win_rate: 1.1}\n- {name: same}\n")
    result = forecast(db, as_of=AS_OF, horizon="quarter", trials=2000, seed=5, scenarios=scenario,
                      target=500_000, by=("team", "stage"))
    run_id = result.run_id
    head = [line.split()[0] for line in RUN_COLUMNS_SQL.strip().splitlines()]
    columns = [c for (c,) in query(db, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'forecast_runs' ORDER BY column_index")]
    assert columns[: len(head)] == head
    assert query(db, "SELECT kind, trials, scenarios, seed FROM forecast_runs") == [("forecast", 2000, ["baseline", "better", "same"], 5)]
    for table in ("forecast_summary", "forecast_deals"):
        assert query(db, f"SELECT count(*), count(*) FILTER (WHERE run_id = ? AND company_id IS NOT NULL) FROM {table}", [run_id])[0][0] > 0
        total, good = query(db, f"SELECT count(*), count(*) FILTER (WHERE run_id = ? AND company_id IS NOT NULL) FROM {table}", [run_id])[0]
        assert total == good
    assert query(db, "SELECT data_type FROM duckdb_columns() WHERE table_name = 'forecast_summary' AND column_name = 'p50'") == [("DECIMAL(18,2)",)]
    # three months and the quarter, per company, scenario and group
    periods = query(db, "SELECT DISTINCT period, period_kind FROM forecast_summary ORDER BY 1")
    assert periods == [("2025-04", "month"), ("2025-05", "month"), ("2025-06", "month"), ("2025-Q2", "horizon")]
    # the neutral scenario is the baseline, number for number
    pairs = query(db, """SELECT count(*) FROM forecast_summary b JOIN forecast_summary s
                         USING (company_id, group_by, group_value, period)
                         WHERE b.scenario = 'baseline' AND s.scenario = 'same'
                           AND (b.mean, b.p10, b.p50, b.p90) IS DISTINCT FROM (s.mean, s.p10, s.p50, s.p90)""")
    assert pairs == [(0,)]
    headline = query(db, """SELECT company_id, p_target FROM forecast_summary
                            WHERE group_by = 'company' AND period_kind = 'horizon' AND scenario = 'baseline'""")
    assert all(0 <= p <= 1 for _, p in headline)
    deals = query(db, "SELECT count(*) FROM forecast_deals WHERE scenario = 'baseline' AND period_kind = 'horizon'")[0][0]
    assert deals == sum(case.deals.height for case in result.inputs)
    text = result.describe()
    assert run_id in text and "c1 better (USD): mean +" in text and "c2 better (EUR): mean +" in text


def test_same_seed_same_numbers(world):
    inputs = prepare(world[0], as_of=AS_OF, horizon="month")
    a = run_scenarios(inputs, trials=1200, seed=11, by="rep")
    b = run_scenarios(inputs, trials=1200, seed=11, by="rep")
    assert a.summary.equals(b.summary) and a.deals.equals(b.deals)
    c = run_scenarios(inputs, trials=1200, seed=12, by="rep")
    assert not a.summary.equals(c.summary)


def test_scenarios_on_common_random_numbers_move_as_their_knobs_say(world):
    inputs = prepare(world[0], as_of=AS_OF, horizon="quarter", company="c1")
    case = inputs[0]
    rep = case.deals["owner_rep_id"][0]
    run = run_scenarios(inputs, [
        {"name": "no new pipeline", "new_pipeline": 0},
        {"name": "late", "slip_days": 45},
        {"name": "without a rep", "remove_reps": [{"rep": rep, "deals": "lose"}]},
        {"name": "rep reassigned", "remove_reps": [rep]},
        {"name": "only one deal", "include_deals": [case.deals["deal_id"][0]]},
    ], trials=2000, seed=1, by="rep")
    comparison = {row["scenario"]: row for row in run.comparison().iter_rows(named=True)}
    summary = run.summary
    baseline_new = summary.filter((pl.col("scenario") == "baseline") & (pl.col("group_by") == "company")
                                  & (pl.col("period_kind") == "horizon"))["new_mean"][0]
    assert comparison["no new pipeline"]["delta_mean"] == pytest.approx(-baseline_new, abs=1)
    assert comparison["late"]["delta_mean"] < 0
    assert comparison["without a rep"]["delta_mean"] < 0
    assert comparison["rep reassigned"]["delta_mean"] == pytest.approx(0, abs=0.01)
    moved = summary.filter((pl.col("scenario") == "rep reassigned") & (pl.col("group_value") == rep)
                           & (pl.col("period_kind") == "horizon"))
    assert moved["mean"][0] == pytest.approx(moved["booked"][0])  # the rep's pipeline went to teammates
    assert comparison["only one deal"]["mean"] < comparison["baseline"]["mean"]
    for row in comparison.values():
        assert row["delta_mean_se"] <= abs(row["delta_mean"]) / 3 + 1
    # Per deal: a deal a scenario drops never books, and each deal's numbers are its own.
    horizon = run.deals.filter(pl.col("period_kind") == "horizon")
    lost = horizon.filter((pl.col("scenario") == "without a rep") & (pl.col("owner_rep_id") == rep))
    assert lost.height > 0 and lost["p_close"].max() == 0 and lost["expected_value"].max() == 0
    only = horizon.filter((pl.col("scenario") == "only one deal") & (pl.col("deal_id") != case.deals["deal_id"][0]))
    assert only["p_close"].max() == 0
    baseline = horizon.filter(pl.col("scenario") == "baseline")
    # p_close is a frequency over 2,000 trials of at most the win probability (with the rate's draw)
    assert (baseline["p_close"] <= baseline["win_probability"] + 0.1).all()


def test_the_tornado_moves_p50_the_way_each_knob_points(world):
    case = prepare(world[0], as_of=AS_OF, horizon="quarter", company="c2")[0]
    table = tornado(case, trials=1500, seed=2, target=300_000)
    knobs = {row["knob"]: row for row in table.iter_rows(named=True)}
    for knob in ("win_rate", "deal_size", "new_pipeline"):
        assert knobs[knob]["p50_low"] < knobs[knob]["p50_base"] < knobs[knob]["p50_high"]
    assert knobs["slip_days"]["p50_low"] > knobs["slip_days"]["p50_high"]
    assert {"stage_win_rate:negotiation", "p_target_high"} <= set(knobs) | set(table.columns)


# ------------------------------------------------------------------------------------ bad input


def test_bad_input_gets_a_message_naming_the_problem(world, tmp_path):
    db = world[0]
    with pytest.raises(InvalidArgument, match="no company can be forecast: pick a later --as-of \\(as_of= in Python\\)\n  company c1 has no pipeline history at or before 2022-06-01: cannot learn its win rates; its earliest usable --as-of is 2023-03-28"):
        prepare(db, as_of="2022-06-01", horizon="month")
    with pytest.raises(InvalidArgument, match="horizon 2025-03-31 is before as_of 2025-04-01"):
        forecast(db, as_of=AS_OF, horizon="2025-03-31", store=False)
    with pytest.raises(InvalidArgument, match="unknown stage 'closing'"):
        forecast(db, as_of=AS_OF, scenarios={"name": "x", "stage_win_rate": {"closing": 1.2}}, trials=10, store=False)
    with pytest.raises(InvalidArgument, match="scenario knob 'win_rates' is unknown"):
        forecast(db, as_of=AS_OF, scenarios={"win_rates": 1.2}, trials=10, store=False)
    with pytest.raises(InvalidArgument, match="not an open deal at the as-of"):
        forecast(db, as_of=AS_OF, scenarios={"name": "x", "exclude_deals": ["deal-999999"]}, trials=10, store=False)
    with pytest.raises(InvalidArgument, match="company 'c9' has no deals"):
        forecast(db, as_of=AS_OF, company="c9", store=False)
    with pytest.raises(InvalidArgument, match="trials must be an integer >= 1, got 0"):
        forecast(db, as_of=AS_OF, trials=0, store=False)
    with pytest.raises(InvalidArgument, match="by must name group dimensions"):
        forecast(db, as_of=AS_OF, by="region", store=False)
    with pytest.raises(CrmLabError, match="does not exist"):
        forecast(tmp_path / "missing.duckdb", as_of=AS_OF)


def test_a_company_without_open_deals_is_named(tmp_path):
    events = write_jsonl(
        tmp_path / "events.jsonl",
        event("e1", "deal-1", "created", "2024-01-02T10:00:00Z", {"stage": "proposal", "amount": 1000, "expected_close_date": "2024-02-29"}),
        event("e2", "deal-1", "won", "2024-02-10T10:00:00Z"),
        event("e3", "deal-2", "created", "2024-01-03T10:00:00Z", {"stage": "proposal", "amount": 500}),
        event("e4", "deal-2", "lost", "2024-01-20T10:00:00Z"),
    )
    db = tmp_path / "crm.duckdb"
    load(db, [events])
    replay(db)
    # Within a week of the last event: later, the as-of would be refused as after the data.
    with pytest.raises(InvalidArgument, match="company c1 has no open deals to forecast"):
        forecast(db, as_of="2024-02-15", store=False)
    with pytest.raises(InvalidArgument, match="db has no"):
        empty = tmp_path / "empty.duckdb"
        duckdb.connect(str(empty)).close()
        forecast(empty, as_of="2024-03-01", store=False)
