"""Bootstrap bands of the sweep and of the best cut-off: reproducible by seed, each replicate the
sweep of a resample at the original cut-offs, capacity respected within each replicate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from crm_lab.errors import InvalidArgument
from crm_lab.leads import bootstrap_sweep, sweep
from crm_lab.leads.thresholds import sort_leads

MONEY = {"hours_per_lead": 1.5, "capacity_hours": 150.0, "cost_per_lead": 40.0, "deal_value": 900.0, "win_rate": 0.3}


def leads(n=400, seed=0):
    rng = np.random.default_rng(seed)
    probabilities = np.round(rng.beta(2, 5, n), 2)  # ties
    converted = rng.random(n) < probabilities
    return probabilities, converted


def test_the_same_seed_gives_the_same_bands_and_choices():
    scores, converted = leads()
    first = bootstrap_sweep(scores, converted, probabilities=scores, replicates=60, seed=7, **MONEY)
    again = bootstrap_sweep(scores, converted, probabilities=scores, replicates=60, seed=7, **MONEY)
    other = bootstrap_sweep(scores, converted, probabilities=scores, replicates=60, seed=8, **MONEY)
    assert_frame_equal(first.bands, again.bands)
    assert_frame_equal(first.replicate_choices, again.replicate_choices)
    assert first.threshold_interval == again.threshold_interval
    assert first.value_interval == again.value_interval
    assert not first.bands.equals(other.bands)


def test_the_curve_and_choice_are_those_of_the_data_as_given():
    scores, converted = leads()
    result = bootstrap_sweep(scores, converted, probabilities=scores, replicates=20, seed=1, **MONEY)
    assert_frame_equal(result.curve, sweep(scores, converted, probabilities=scores, **MONEY))
    table = result.table
    assert table["is_chosen"].sum() == 1
    assert table.filter("is_chosen")["threshold"][0] == result.choice.threshold
    assert table["threshold"].to_list() == result.bands["threshold"].to_list()


def test_a_replicate_is_the_sweep_of_a_resample_read_at_the_original_cut_offs():
    """With one replicate, each band is that replicate's curve: redo the resample by hand."""
    scores, converted = leads(n=120, seed=3)
    seed = 11
    result = bootstrap_sweep(scores, converted, replicates=1, seed=seed, **MONEY)
    ordered = sort_leads(scores, converted)
    ranked_scores = np.sort(scores)[::-1]
    draws = np.random.default_rng(np.random.SeedSequence(seed)).integers(0, len(scores), size=(1, len(scores)))[0]
    resampled_scores, resampled_converted = ranked_scores[draws], ordered.converted[draws]
    positives = resampled_converted.sum()
    for row in result.bands.iter_rows(named=True):
        routed = resampled_scores >= row["threshold"]
        tp = (routed & resampled_converted).sum()
        if routed.any():
            assert row["precision_lo"] == row["precision_hi"] == pytest.approx(tp / routed.sum())
        else:  # no resampled lead scores this high
            assert math.isnan(row["precision_lo"])
        assert row["recall_lo"] == pytest.approx(tp / positives)
        assert row["profit_lo"] == pytest.approx(tp * 900 * 0.3 - routed.sum() * 40)
        assert row["f1_lo"] == pytest.approx(2 * tp / (routed.sum() + positives))


def test_each_replicate_chooses_within_the_capacity():
    scores, converted = leads()
    result = bootstrap_sweep(scores, converted, replicates=100, seed=2, objective="conversions", **MONEY)
    routed = result.replicate_choices["routed"].to_numpy()
    assert (routed * MONEY["hours_per_lead"] <= MONEY["capacity_hours"]).all()
    assert (routed > 0).all()


def test_bands_and_intervals_are_ordered_and_cover_the_estimate():
    scores, converted = leads(n=1000, seed=4)
    result = bootstrap_sweep(scores, converted, replicates=200, seed=5, level=0.9, **MONEY)
    table = result.table
    for metric in ("precision", "recall", "f1", "profit"):
        assert (table[f"{metric}_lo"] <= table[f"{metric}_hi"]).all()
        inside = ((table[f"{metric}_lo"] <= table[metric]) & (table[metric] <= table[f"{metric}_hi"])).mean()
        assert inside >= 0.9, metric
    low, high = result.threshold_interval
    assert low <= result.choice.threshold <= high
    assert low in set(table["threshold"]) and high in set(table["threshold"])  # actual cut-offs
    value_low, value_high = result.value_interval
    assert value_low <= result.choice.value <= value_high
    assert value_high - value_low > 0


def test_when_nobody_should_be_routed_the_interval_says_so():
    scores, converted = leads(n=200, seed=6)
    result = bootstrap_sweep(scores, converted, replicates=30, seed=0, cost_per_lead=1000, deal_value=10)
    assert result.choice.routes_nobody
    assert result.threshold_interval == (math.inf, math.inf)
    assert result.value_interval == (0.0, 0.0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"replicates": 0}, "replicates must be a whole number >= 1, got 0"),
        ({"level": 1.0}, "level must be < 1, got 1.0"),
        ({"level": 0}, "level must be > 0, got 0"),
        ({"seed": -1}, "seed must be a whole number >= 0, got -1"),
        ({"objective": "money"}, "objective must be one of profit, f_beta, conversions; got 'money'"),
        ({"cost_per_lead": -1}, "cost_per_lead must be >= 0, got -1"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    scores, converted = leads(n=20)
    with pytest.raises(InvalidArgument) as error:
        bootstrap_sweep(scores, converted, **kwargs)
    assert message in str(error.value)


def test_the_bootstraps_choice_names_the_capacity_when_it_admits_no_lead():
    result = bootstrap_sweep([0.9, 0.7, 0.6, 0.4, 0.2, 0.1], [1, 1, 0, 1, 0, 0], replicates=20, seed=0,
                             hours_per_lead=1.5, capacity_hours=0, cost_per_lead=60, deal_value=20_000, win_rate=0.2)
    assert result.choice.describe() == "route nobody (capacity 0 h admits no lead at 1.5 h per lead)"
    assert (result.replicate_choices["threshold"] == math.inf).all()
