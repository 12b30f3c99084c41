"""Defects a user walkthrough found in the forecast, each pinned by an exact message or by a
value computed independently (closed forms, hand-worked examples)."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import polars as pl
import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.forecast import Scenario, forecast, prepare, run_scenarios
from crm_lab.forecast.estimate import NewPipelineModel
from crm_lab.forecast.inputs import company_currency, portfolio
from crm_lab.forecast.metrics import crps_gamma, crps_samples, score_gamma, weighted_pipeline
from crm_lab.forecast.run import check_target
from crm_lab.forecast.simulation import Portfolio, simulate
from tests.conftest import query
from tests.forecast_world import built_world, copy_of

AS_OF = "2025-04-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return built_world(tmp_path_factory.getbasetemp())


# ------------------------------------------------------------- 1. an as-of after the data ends


def test_every_entry_point_refuses_an_as_of_after_the_data(world):
    db = world[0]
    first, last = query(db, "SELECT min(occurred_at AT TIME ZONE 'UTC')::DATE, max(occurred_at AT TIME ZONE 'UTC')::DATE FROM events")[0]
    message = (f"as_of 2031-01-01: after the data ends (the event log spans {first} to {last}); "
               f"forecast as of at most 7 days after {last}, or load and replay newer events")
    with pytest.raises(InvalidArgument) as raised:
        prepare(db, as_of="2031-01-01", horizon="quarter")  # notebooks 03 and 06, the dashboard
    assert str(raised.value) == message
    with pytest.raises(InvalidArgument) as raised:
        forecast(db, as_of="2031-01-01", trials=10, store=False)  # the CLI
    assert str(raised.value) == message
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    try:
        with pytest.raises(InvalidArgument) as raised:
            prepare(as_of="2031-01-01", company="c2", con=con)  # an open connection too
    finally:
        con.close()
    c2_first, c2_last = query(db, "SELECT min(occurred_at AT TIME ZONE 'UTC')::DATE, max(occurred_at AT TIME ZONE 'UTC')::DATE FROM events WHERE company_id = 'c2'")[0]
    assert str(raised.value) == (f"company c2: as_of 2031-01-01: after the data ends (the event log spans {c2_first} to "
                                 f"{c2_last}); forecast as of at most 7 days after {c2_last}, or load and replay newer events")


# --------------------------------------------------------------------- 2. currencies


def test_two_currencies_in_one_company_are_named_with_amounts_and_counts():
    deals = pl.DataFrame({"amount": [100.0, 250.5, 10_000.0], "currency": ["USD", "USD", "JPY"]})
    empty = pl.DataFrame({"amount": [], "currency": []}, schema={"amount": pl.Float64, "currency": pl.String})
    with pytest.raises(InvalidArgument) as raised:
        company_currency("c1", deals, empty, empty)
    assert str(raised.value) == (
        "company c1 has open deals in 2 currencies: JPY 10,000.00 in 1 deal, USD 350.50 in 2 deals; "
        "a forecast adds amounts, so they must be in one currency: load amounts converted to one currency "
        "(the importers' --rates FILE) or give these deals one currency"
    )
    booked = pl.DataFrame({"amount": [40.0], "currency": ["EUR"]})
    with pytest.raises(InvalidArgument) as raised:
        company_currency("c1", deals.head(2), booked, empty)
    assert str(raised.value).startswith(
        "company c1 has amounts in 2 currencies (EUR, USD): open deals USD 350.50 in 2 deals; "
        "booked in the window EUR 40.00 in 1 deal; a forecast adds amounts"
    )
    # deals without a currency are named too, after the currencies, but are no currency of their own
    unnamed = pl.concat([deals, pl.DataFrame({"amount": [5_000.0], "currency": [None]}, schema=deals.schema)])
    with pytest.raises(InvalidArgument) as raised:
        company_currency("c1", unnamed, empty, empty)
    assert str(raised.value).startswith(
        "company c1 has open deals in 2 currencies: JPY 10,000.00 in 1 deal, USD 350.50 in 2 deals, "
        "no currency 5,000.00 in 1 deal; a forecast adds amounts")
    # a deal without a currency is taken to be in the company's one currency
    with_null = pl.DataFrame({"amount": [1.0, 2.0], "currency": ["USD", None]})
    assert company_currency("c1", with_null, empty, empty) == "USD"
    assert company_currency("c1", pl.DataFrame({"amount": [1.0], "currency": [None]}, schema={"amount": pl.Float64, "currency": pl.String}),
                            empty, empty) is None


def test_a_company_with_open_deals_in_two_currencies_is_refused_on_the_database(world, tmp_path):
    db = copy_of(world[0], tmp_path / "crm.duckdb")
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    open_ids = [d for (d,) in con.sql(f"SELECT deal_id FROM deals_as_of(TIMESTAMPTZ '{AS_OF}') WHERE company_id = 'c1' "
                                      "AND NOT is_closed ORDER BY deal_id").fetchall()]
    yen = open_ids[::2]
    con.execute("UPDATE deal_history SET currency = 'JPY' WHERE company_id = 'c1' AND list_contains($ids, deal_id)", {"ids": yen})
    expected = con.sql(f"""SELECT currency, sum(amount), count(*) FROM deals_as_of(TIMESTAMPTZ '{AS_OF}')
                           WHERE company_id = 'c1' AND NOT is_closed GROUP BY 1 ORDER BY 1""").fetchall()
    con.close()
    assert [c for c, _, _ in expected] == ["JPY", "USD"]
    listed = ", ".join(f"{c} {float(a):,.2f} in {n} deals" for c, a, n in expected)
    with pytest.raises(InvalidArgument) as raised:
        forecast(db, as_of=AS_OF, company="c1", trials=10, store=False)
    assert str(raised.value).startswith(f"company c1 has open deals in 2 currencies: {listed}; ")
    # the other companies still forecast, each labelled with its currency
    result = forecast(db, as_of=AS_OF, company="c2", trials=200, store=False)
    assert result.inputs[0].currency == "EUR" and "  c2 baseline (EUR): booked " in result.describe()


# --------------------------------------------------------------------- 3. money overflow


LIMIT = ("at most 9,999,999,999,999.99 (the largest amount kept to the cent: amounts are simulated in float64 "
         "and stored as DECIMAL(18,2))")


@pytest.mark.parametrize("target", [1e20, 1e17, 1e16, 10_000_000_000_000.0, -1.0, -0.01, float("nan"), float("inf"), "1e6"])
def test_a_target_that_cannot_be_kept_to_the_cent_is_refused(target):
    with pytest.raises(InvalidArgument) as raised:
        check_target(target)
    assert str(raised.value) == f"target must be a non-negative amount {LIMIT}, got {target!r}"


def test_the_largest_target_is_stored_to_the_cent(world, tmp_path):
    """DuckDB casts a DOUBLE to DECIMAL by scaling in floating point: 9,999,999,999,999,998.0
    would be stored as 9,999,999,999,999,997.44; the largest accepted amount keeps its cents."""
    assert check_target(9_999_999_999_999.99) == 9_999_999_999_999.99 and check_target(0) == 0.0
    db = copy_of(world[0], tmp_path / "crm.duckdb")
    with pytest.raises(InvalidArgument) as raised:
        forecast(db, as_of=AS_OF, company="c1", trials=100, target=1e20)
    assert str(raised.value) == f"target must be a non-negative amount {LIMIT}, got 1e+20"
    forecast(db, as_of=AS_OF, company="c1", trials=100, target=9_999_999_999_999.99)
    assert query(db, "SELECT DISTINCT target::VARCHAR FROM forecast_summary WHERE target IS NOT NULL") == [("9999999999999.99",)]
    assert query(db, "SELECT target::VARCHAR FROM forecast_runs") == [("9999999999999.99",)]


def test_a_scenario_whose_amounts_pass_the_limit_is_refused_by_name(world):
    inputs = prepare(world[0], as_of=AS_OF, horizon="quarter", company="c1")
    with pytest.raises(InvalidArgument) as raised:
        run_scenarios(inputs, {"name": "huge", "deal_size": 1e10}, trials=200, seed=1)
    text = str(raised.value)
    assert text.startswith("company c1 scenario 'huge': the forecast's summary ")
    assert text.endswith(f"; amounts must be {LIMIT}: lower the scenario's deal_size, win_rate or new_pipeline")


# -------------------------------------------------------------- 4. negative slips are clamped


def hand_model(rate: np.ndarray) -> NewPipelineModel:
    model = NewPipelineModel()
    model.daily_rate_ = rate
    model.season_index_ = np.ones(12)
    model._lookback_mean = 1.0
    return model


def test_a_negative_slip_brings_new_pipeline_forward_up_to_the_models_last_offset():
    """Rate r(d) = d + 1 for offsets d < 400. A window of 91 days from the as-of, slipped by -s:
    day d gets r(min(d + s, 399)), so sum_{d=0}^{90} (min(d + s, 399) + 1)."""
    rate = np.arange(1, 401, dtype=np.float64)
    model = hand_model(rate)
    as_of = 20_000
    edges = np.array([as_of, as_of + 31, as_of + 61, as_of + 91])
    for s in (0, 30, 310, 5000):
        expected = [sum(min(d + s, 399) + 1 for d in range(lo, hi)) for lo, hi in ((0, 31), (31, 61), (61, 91))]
        assert model.expected_counts(as_of, edges, -s).tolist() == expected, s
    # a positive slip delays: the first s days get nothing
    assert model.expected_counts(as_of, edges, 10).tolist() == [sum(d - 10 + 1 for d in range(10, 31)),
                                                                sum(d - 9 for d in range(31, 61)), sum(d - 9 for d in range(61, 91))]
    with pytest.raises(InvalidArgument) as raised:
        model.expected_counts(as_of, np.array([as_of, as_of + 401]), 0)
    assert str(raised.value) == "the window runs 400 days past the as-of; the new-pipeline model covers 400: pick a shorter horizon"


def test_a_large_negative_slip_runs_and_never_closes_before_the_as_of(world):
    inputs = prepare(world[0], as_of=AS_OF, horizon="quarter", company="c1")
    run = run_scenarios(inputs, [{"name": "a", "slip_days": -310}, {"name": "b", "slip_days": -100_000}], trials=500, seed=1)
    case = inputs[0]
    p = portfolio(case, Scenario(slip_days=-310))
    # every win of an open deal closes in the window's first month: no mass before the as-of is lost
    assert np.allclose(p.close_cdf[:, 0], 1.0)
    assert np.array_equal(portfolio(case, Scenario(slip_days=-100_000)).close_cdf, p.close_cdf)
    horizon = run.summary.filter((pl.col("group_by") == "company") & (pl.col("period_kind") == "horizon"))
    assert set(horizon["scenario"]) == {"baseline", "a", "b"}


# ------------------------------------------------------------------ 5. win_rate is capped at 1


def test_win_rate_multipliers_cap_every_probability_at_one():
    """Open deals: with the multiplier far above 1/p every deal books in every trial."""
    port = Portfolio.fixed(win_probability=[0.3, 0.6], amount=[100.0, 250.0])
    out = simulate([port.with_changes(win_multiplier=np.array([20.0, 20.0]))], trials=3000, seed=4)[0]
    assert np.all(out.totals()[:, 0] == 350.0)


def test_win_rate_scales_new_pipeline_wins_as_a_new_deals_capped_probability(world):
    """New pipeline: a new deal's win probability p (the first stage's 0-30 day rate) becomes
    min(m p, 1), so the expected new wins scale by min(m p, 1) / p."""
    case = prepare(world[0], as_of=AS_OF, horizon="quarter", company="c1")[0]
    cells = case.model.win_rates_.cell_rates_
    first = case.model.win_rates_.stages_[0]
    p = cells.filter((pl.col("stage") == first) & (pl.col("age_bucket") == "0-30"))["rate"][0]
    base = portfolio(case).new_expected
    for m in (0.5, 1.1, 1 / p, 20.0, 1e6):
        scaled = portfolio(case, Scenario(name="x", win_rate=m)).new_expected
        assert scaled == pytest.approx(base * min(m * p, 1.0) / p, rel=1e-12), m
    assert portfolio(case, Scenario(name="x", win_rate=20.0)).new_expected == pytest.approx(base / p, rel=1e-12)


# ------------------------------------------------- 6. the weighted pipeline is never negative


def test_the_weighted_pipeline_distribution_matches_the_exponential_by_hand():
    """One deal, p = 1/2 and amount 100: mean 50 and sd sqrt(1/4 * 100^2) = 50, so the gamma of
    these moments is the exponential with mean 50 (shape 1). Booked 100, actual 180 (x = 80):
    quantile 100 - 50 ln(1 - q), PIT 1 - e^-1.6, CRPS x + 2 * 50 e^(-x/50) - 3/2 * 50."""
    mean, sd = weighted_pipeline(np.array([0.5]), np.array([100.0]))
    assert (mean, sd) == (50.0, 50.0)
    score = score_gamma(mean, sd, 180.0, shift=100.0)
    for level, value in score.quantiles.items():
        assert value == pytest.approx(100 - 50 * math.log(1 - level), rel=1e-12)
    assert score.quantiles[0.05] > 100  # the normal's P05 was 50 - 1.645 * 50 < 0
    assert score.mean == 150.0
    assert score.pit == pytest.approx(1 - math.exp(-1.6), rel=1e-12)
    assert score.crps == pytest.approx(80 + 100 * math.exp(-1.6) - 75, rel=1e-12)
    # below the bookings: all of the distribution is above the actual
    low = score_gamma(mean, sd, 90.0, shift=100.0)
    assert low.pit == 0.0 and low.crps == pytest.approx(50 + 10 - 25, rel=1e-12)  # E|X - y| - E|X - X'| / 2


def test_the_gamma_crps_matches_the_exact_crps_of_a_fine_quantile_sample():
    from scipy.special import gammaincinv

    shape, rate = 3.0, 0.01  # mean 300, sd sqrt(3) * 100
    grid = gammaincinv(shape, (np.arange(200_000) + 0.5) / 200_000) / rate
    for actual in (0.0, 120.0, 300.0, 900.0):
        assert crps_gamma(300.0, math.sqrt(3) * 100, actual) == pytest.approx(crps_samples(grid, actual), rel=2e-4)
    assert crps_gamma(0.0, 0.0, 12.5) == 12.5


# -------------------------------------------------- 7. scenario ids and the companies forecast


def test_an_id_of_a_company_not_forecast_is_named_with_its_company(world):
    db = world[0]
    c1_deal = query(db, f"""SELECT min(deal_id) FROM deals_as_of(TIMESTAMPTZ '{AS_OF}') WHERE company_id = 'c1' AND NOT is_closed
                            AND deal_id NOT IN (SELECT deal_id FROM deals_as_of(TIMESTAMPTZ '{AS_OF}')
                                                WHERE company_id <> 'c1' AND NOT is_closed)""")[0][0]
    with pytest.raises(InvalidArgument) as raised:
        forecast(db, as_of=AS_OF, company="c2", trials=10, store=False,
                 scenarios={"name": "without", "exclude_deals": [c1_deal]})
    assert str(raised.value) == (
        f"scenario 'without': exclude_deals names {c1_deal!r}, an open deal of company c1 at the as-of, which this run "
        "does not forecast (it forecasts c2); name deals of the companies forecast, or forecast company c1"
    )
    # rep-0055 is a rep of c2 and c3, not of c1
    assert query(db, "SELECT list(company_id ORDER BY company_id) FROM reps WHERE rep_id = 'rep-0055'") == [(["c2", "c3"],)]
    with pytest.raises(InvalidArgument) as raised:
        forecast(db, as_of=AS_OF, company="c1", trials=10, store=False,
                 scenarios={"name": "gone", "remove_reps": ["rep-0055"]})
    assert str(raised.value) == (
        "scenario 'gone': remove_reps names 'rep-0055', a rep of company c2, c3, which this run does not forecast "
        "(it forecasts c1); name reps of the companies forecast, or forecast company c2"
    )
    # an id no company has is unknown, as before
    with pytest.raises(InvalidArgument) as raised:
        forecast(db, as_of=AS_OF, company="c2", trials=10, store=False, scenarios={"name": "x", "exclude_deals": ["deal-999999"]})
    assert str(raised.value) == "scenario 'x': exclude_deals names 'deal-999999', which is not an open deal at the as-of"


def test_an_id_of_one_forecast_company_applies_there_in_an_all_company_run(world):
    db = world[0]
    inputs = prepare(db, as_of=AS_OF, horizon="quarter")
    c1 = next(c for c in inputs if c.company_id == "c1")
    deal = c1.deals["deal_id"][0]
    run = run_scenarios(inputs, {"name": "without", "exclude_deals": [deal]}, trials=300, seed=2)
    compare = {(r["company_id"], r["scenario"]): r for r in run.comparison().iter_rows(named=True)}
    assert compare[("c1", "without")]["delta_mean"] < 0
    for company in ("c2", "c3"):  # the deal is not theirs: their scenario is their baseline
        assert compare[(company, "without")]["delta_mean"] == 0.0
