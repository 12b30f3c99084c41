"""The estimators on synthetic histories whose answers are known: censoring at the as-of,
shrinkage where data is thin, close dates conditioned on the as-of, new-pipeline rates."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.forecast.estimate import (
    AmountChangeModel,
    CloseTimingModel,
    ModelOptions,
    NewPipelineModel,
    WinRateModel,
    label_snapshots,
)
from crm_lab.forecast.periods import MISSING_DAY, day_number, forecast_window

UTC = dt.timezone.utc
BASE = dt.datetime(2024, 1, 1, tzinfo=UTC)


def at(days: float) -> dt.datetime:
    return BASE + dt.timedelta(days=float(days))


def snapshot_rows(**columns) -> pl.DataFrame:
    n = len(columns["snapshot_at"])
    defaults = {
        "deal_id": [f"d{i}" for i in range(n)], "stage": ["proposal"] * n, "age_days": [10.0] * n,
        "amount": [1000.0] * n, "close_amount": [None] * n, "expected_close_date": [None] * n,
        "closed_at": [None] * n, "outcome": [None] * n, "team": ["SMB"] * n,
    }
    frame = {**defaults, **columns}
    return pl.DataFrame(frame, schema_overrides={
        "snapshot_at": pl.Datetime("us", "UTC"), "closed_at": pl.Datetime("us", "UTC"),
        "expected_close_date": pl.Date, "close_amount": pl.Float64, "outcome": pl.String,
    })


def test_labels_use_only_what_was_known_at_the_as_of():
    rows = snapshot_rows(
        snapshot_at=[at(0), at(0), at(90), at(100), at(120)],
        closed_at=[at(30), at(200), at(95), None, at(125)],
        outcome=["won", "won", "lost", None, "won"],
        close_amount=[1100.0, 900.0, None, None, 1000.0],
        expected_close_date=[at(20).date(), None, at(80).date(), None, at(130).date()],
    )
    labels = label_snapshots(rows, at(110), outcome_window_days=60)
    # the snapshot after the as-of is not a training row at all
    assert labels.height == 4 and labels["snapshot_at"].max() == at(100)
    known = dict(zip(labels["deal_id"], labels["known"]))
    won = dict(zip(labels["deal_id"], labels["won"]))
    # won at day 30: known; closed at day 200, after the as-of: known only as "not won within 60
    # days" (it was watched for 110 days); lost at 95: known; open at 100, watched 10 days: unknown
    assert known == {"d0": True, "d1": True, "d2": True, "d3": False}
    assert won == {"d0": 1, "d1": 0, "d2": 0, "d3": 0}
    weight = dict(zip(labels["deal_id"], labels["weight"]))
    assert weight["d3"] == 0
    # a label resolved at day x is weighted by 1 / (share of rows watched at least x days)
    assert weight["d0"] == pytest.approx(4 / 2)  # resolved after 30 days: 2 of 4 rows watched that long
    assert weight["d2"] == pytest.approx(1.0)  # after 5 days: every row was watched that long
    slip = dict(zip(labels["deal_id"], labels["slip_days"]))
    assert slip["d0"] == 10 and slip["d2"] is None  # closed 10 days after its expected day
    assert dict(zip(labels["deal_id"], labels["amount_ratio"]))["d0"] == pytest.approx(1.1)


def synthetic_history(n=6000, seed=0, p_win=0.4, span=300.0):
    """Snapshots at uniform times over ``span`` days; wins take longer than losses, so the recent
    rows that are still open are mostly future wins."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, span, n)
    won = rng.random(n) < p_win
    tau = np.where(won, rng.exponential(90, n), rng.exponential(10, n))
    return snapshot_rows(
        snapshot_at=[at(x) for x in t], closed_at=[at(x + y) for x, y in zip(t, tau)],
        outcome=np.where(won, "won", "lost").tolist(), close_amount=[1000.0] * n,
    ), p_win * (1 - np.exp(-365 / 90))


def test_censoring_weights_recover_the_win_rate_that_dropping_open_rows_biases():
    rows, truth = synthetic_history()
    labels = label_snapshots(rows, at(300), outcome_window_days=365)
    model = WinRateModel(prior_strength=0).fit(labels)
    assert model.company_rate_ == pytest.approx(truth, abs=0.02)
    closed = labels.filter(pl.col("closed_at") <= at(300))
    naive = (closed["outcome"] == "won").mean()
    assert naive < truth - 0.05  # the bias the weights remove


def test_thin_cells_are_shrunk_toward_their_stage_and_unknown_stages_get_the_company_rate():
    # 100 proposal deals young (40% won), 2 old ones both won
    young = [f"y{i}" for i in range(100)]
    labels = pl.DataFrame({
        "deal_id": young + ["o1", "o2"], "stage": ["proposal"] * 102, "age_days": [5.0] * 100 + [200.0, 200.0],
        "won": [1] * 40 + [0] * 60 + [1, 1], "weight": [1.0] * 102, "team": ["SMB"] * 102,
    })
    model = WinRateModel(prior_strength=10).fit(labels)
    stage = model.stage_rates_["rate"][0]
    company = model.company_rate_
    assert stage == pytest.approx((42 + 10 * company) / (102 + 10))
    old = model.cell_rates_.filter(pl.col("age_bucket") == "180+")["rate"][0]
    assert old == pytest.approx((2 + 10 * stage) / (2 + 10))
    p = model.predict_proba(pl.DataFrame({"stage": ["proposal", "negotiation"], "age_days": [200.0, 1.0]}))
    assert p[0] == pytest.approx(old) and p[1] == pytest.approx(company)
    assert model.stage_rates_["deals"][0] == 102 and model.stage_rates_["rows"][0] == 102
    by_team = WinRateModel(by="team").fit(labels)
    assert by_team.group_rates_ is not None and set(by_team.group_rates_["group"]) == {"SMB"}


def test_a_history_without_a_known_win_is_refused():
    rows = snapshot_rows(snapshot_at=[at(0), at(1)], closed_at=[at(5), None], outcome=["lost", None])
    with pytest.raises(InvalidArgument, match="no won deal with a known outcome"):
        WinRateModel().fit(label_snapshots(rows, at(10)))


def timing_labels(n=3000, seed=1):
    """Wins that close 20 +/- 10 days after an expected close 30 days after the snapshot."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 300, n)
    slip = np.rint(rng.normal(20, 10, n))
    ecd = [at(x + 30).date() for x in t]
    closed = [at(np.floor(x) + 1 + 30 + s + 0.5) for x, s in zip(t, slip)]
    rows = snapshot_rows(snapshot_at=[at(x) for x in t], closed_at=closed, outcome=["won"] * n,
                         close_amount=[1000.0] * n, expected_close_date=ecd)
    return label_snapshots(rows, at(700))


def test_close_dates_follow_the_learned_slip_and_never_fall_before_the_as_of():
    model = CloseTimingModel(prior_strength=0).fit(timing_labels())
    window = forecast_window(at(400), "quarter")
    edges = window.edges()
    as_of_day = window.as_of_day
    ecd = np.array([as_of_day + 30, as_of_day - 200, MISSING_DAY])
    cdf = model.close_cdf(["proposal"] * 3, ecd, as_of_day, edges)
    assert np.all(np.diff(cdf, axis=1) >= 0) and np.all((cdf >= 0) & (cdf <= 1))
    # the first deal closes about 50 days after the as-of: by the end of the day 50 about half
    one = model.close_cdf(["proposal"], ecd[:1], as_of_day, np.array([edges[0], as_of_day + 51]))
    assert one[0, 0] == pytest.approx(0.5, abs=0.06)
    # moving every close 30 days later only ever lowers the chance of closing by a date
    later = model.close_cdf(["proposal"] * 3, ecd, as_of_day, edges, shift_days=30)
    assert np.all(later <= cdf + 1e-12) and later[0, -1] < cdf[0, -1]
    # nothing closes in a period that ended before the as-of
    past = model.close_cdf(["proposal"], ecd[:1], as_of_day, np.array([as_of_day - 40, as_of_day - 10, as_of_day + 90]))
    assert past[0, 0] == 0


def test_amount_ratios_are_learned_as_quantiles():
    rng = np.random.default_rng(2)
    n = 4000
    ratio = np.exp(rng.normal(-0.05, 0.1, n))
    labels = pl.DataFrame({"deal_id": [f"d{i}" for i in range(n)], "stage": ["negotiation"] * n, "won": [1] * n,
                           "weight": [1.0] * n, "amount_ratio": ratio})
    model = AmountChangeModel(quantiles=256, prior_strength=0).fit(labels)
    assert model.quantiles_.shape == (2, 256)
    assert np.median(model.quantiles_[0]) == pytest.approx(np.exp(-0.05), abs=0.01)
    assert model.rows_for(["negotiation", "unknown"]).tolist() == [0, 1]


def test_new_pipeline_rate_counts_only_wins_of_deals_opened_after_each_as_of():
    # a win every day; each deal opened 20 days before it won
    closed = [at(d + 0.5) for d in range(0, 600)]
    wins = pl.DataFrame({
        "closed_at": closed, "run_start": [c - dt.timedelta(days=20) for c in closed], "amount": [100.0] * 600,
        "owner_rep_id": ["r1"] * 600, "team": ["SMB"] * 600, "territory_id": ["t1"] * 600,
    }, schema_overrides={"closed_at": pl.Datetime("us", "UTC"), "run_start": pl.Datetime("us", "UTC")})
    model = NewPipelineModel(seasonality=False).fit(wins, at(500), history_start=at(0))
    assert model.daily_rate_[:14].max() < 0.2  # too soon for a deal opened after the as-of to win
    assert model.daily_rate_[28:300].mean() == pytest.approx(1.0, abs=0.05)
    edges = np.array([day_number(at(500).date()), day_number(at(530).date())])
    assert model.expected_counts(int(edges[0]), edges)[0] == pytest.approx(10.0, abs=1.5)
    # wins after the as-of are not seen
    assert model.sizes_["amount"].sum() > 0 and model.wins_seen_ <= 500


def test_model_options_refuse_unknown_settings():
    with pytest.raises(InvalidArgument, match="model option 'lookback' is unknown"):
        ModelOptions.from_dict({"lookback": 10})
    assert ModelOptions.from_dict({"age_buckets": [10, 20]}).age_buckets == (10, 20)
