"""The exact threshold sweep: scikit-learn's curves to the bit, brute force per threshold, money
and capacity, the packed sort against argsort, the best cut-off, and bad input."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from unittest import mock

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix_at_thresholds, f1_score, precision_recall_curve, roc_curve

from crm_lab.errors import InvalidArgument
from crm_lab.leads import best_cutoff, sweep
from crm_lab.leads import thresholds
from crm_lab.leads.thresholds import SWEEP_COLUMNS, RoutingEconomics, sort_leads, sweep_sorted


def tied_leads(n: int, seed: int, levels: int = 20):
    """Scores on a coarse grid (many ties), outcomes more likely at high scores."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, n) / levels
    converted = rng.random(n) < 0.1 + 0.7 * scores
    return scores, converted


@st.composite
def leads_with_both_outcomes(draw, max_size=60):
    n = draw(st.integers(2, max_size))
    scores = draw(st.lists(st.integers(0, 8).map(lambda v: v / 4), min_size=n, max_size=n))
    converted = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    converted[0], converted[1] = True, False  # both classes
    return np.array(scores), np.array(converted)


# ------------------------------------------------------------------------ against scikit-learn


def test_precision_recall_and_thresholds_equal_scikit_learn_on_heavy_ties():
    scores, converted = tied_leads(5000, seed=1)
    curve = sweep(scores, converted)
    precision, recall, thresholds = precision_recall_curve(converted, scores)
    # scikit-learn lists thresholds ascending and appends the (precision 1, recall 0) end point.
    assert curve.height == len(thresholds) == 20
    np.testing.assert_array_equal(curve["threshold"].to_numpy()[::-1], thresholds)
    np.testing.assert_array_equal(curve["precision"].to_numpy()[::-1], precision[:-1])
    np.testing.assert_array_equal(curve["recall"].to_numpy()[::-1], recall[:-1])


def test_roc_points_equal_scikit_learn_without_dropped_points():
    scores, converted = tied_leads(5000, seed=2, levels=7)
    curve = sweep(scores, converted)
    fpr, tpr, thresholds = roc_curve(converted, scores, drop_intermediate=False)
    # scikit-learn prepends the (0, 0) point at threshold inf.
    np.testing.assert_array_equal(curve["threshold"].to_numpy(), thresholds[1:])
    np.testing.assert_array_equal(curve["fpr"].to_numpy(), fpr[1:])
    np.testing.assert_array_equal(curve["recall"].to_numpy(), tpr[1:])


@settings(max_examples=100, deadline=None)
@given(leads_with_both_outcomes())
def test_counts_equal_scikit_learn_for_any_ties(data):
    scores, converted = data
    curve = sweep(scores, converted)
    tns, fps, fns, tps, thresholds = confusion_matrix_at_thresholds(converted, scores)
    np.testing.assert_array_equal(curve["threshold"].to_numpy(), thresholds)
    np.testing.assert_array_equal(curve["tp"].to_numpy(), tps)
    np.testing.assert_array_equal(curve["fp"].to_numpy(), fps)
    precision, recall, _ = precision_recall_curve(converted, scores)
    np.testing.assert_array_equal(curve["precision"].to_numpy()[::-1], precision[:-1])
    np.testing.assert_array_equal(curve["recall"].to_numpy()[::-1], recall[:-1])


# ---------------------------------------------------------------------------------- brute force


@settings(max_examples=100, deadline=None)
@given(
    leads_with_both_outcomes(max_size=40),
    st.floats(0, 3),
    st.floats(0, 50),
    st.floats(0, 5000),
    st.floats(0, 1),
    st.one_of(st.none(), st.floats(0, 60)),
)
def test_every_row_equals_a_brute_force_count_at_its_threshold(data, hours, cost, value, win_rate, capacity):
    scores, converted = data
    probabilities = np.linspace(0.05, 0.95, len(scores))
    curve = sweep(scores, converted, probabilities=probabilities, hours_per_lead=hours, capacity_hours=capacity,
                  cost_per_lead=cost, deal_value=value, win_rate=win_rate)
    positives, n = converted.sum(), len(scores)
    assert curve["threshold"].to_list() == sorted(set(scores.tolist()), reverse=True)
    for row in curve.iter_rows(named=True):
        routed = scores >= row["threshold"]
        tp = int((routed & converted).sum())
        assert row["routed"] == routed.sum()
        assert row["tp"] == tp
        assert row["fp"] == routed.sum() - tp
        assert row["precision"] == pytest.approx(tp / routed.sum())
        assert row["recall"] == pytest.approx(tp / positives)
        assert row["fpr"] == pytest.approx((routed.sum() - tp) / (n - positives))
        fn = positives - tp
        assert row["f1"] == pytest.approx(2 * tp / (2 * tp + (routed.sum() - tp) + fn))
        assert row["lift"] == pytest.approx((tp / routed.sum()) / (positives / n))
        assert row["expected_conversions"] == pytest.approx(probabilities[routed].sum())
        assert row["workload_hours"] == pytest.approx(routed.sum() * hours)
        assert row["within_capacity"] == (capacity is None or routed.sum() * hours <= capacity)
        assert row["cost"] == pytest.approx(routed.sum() * cost)
        assert row["pipeline"] == pytest.approx(tp * value)
        assert row["revenue"] == pytest.approx(tp * value * win_rate)
        assert row["profit"] == pytest.approx(tp * value * win_rate - routed.sum() * cost)


def test_a_hand_worked_sweep():
    curve = sweep([0.9, 0.8, 0.8, 0.3, 0.3], [True, False, True, False, True], probabilities=[0.9, 0.8, 0.8, 0.3, 0.3],
                  hours_per_lead=2, capacity_hours=6, cost_per_lead=10, deal_value=1000, win_rate=0.25)
    assert curve.columns == list(SWEEP_COLUMNS)
    assert curve.select("threshold", "routed", "tp", "fp", "within_capacity", "profit").rows() == [
        (0.9, 1, 1, 0, True, 240.0),  # 1 conversion x 1000 x 0.25 - 1 x 10
        (0.8, 3, 2, 1, True, 470.0),
        (0.3, 5, 3, 2, False, 700.0),  # 10 hours > 6
    ]
    assert curve["expected_conversions"].to_list() == pytest.approx([0.9, 2.5, 3.1])
    assert curve["lift"].to_list() == pytest.approx([1 / 0.6, (2 / 3) / 0.6, 1.0])


def test_without_probabilities_expected_conversions_are_null():
    curve = sweep([3, 2, 1], [1, 0, 1])
    assert curve["expected_conversions"].null_count() == 3
    assert curve.schema["expected_conversions"] == pl.Float64


def test_negative_zero_and_zero_are_one_cut_off_like_scikit_learn():
    curve = sweep([0.0, -0.0, 1.0], [True, False, True])
    assert curve["routed"].to_list() == [1, 3]


# ------------------------------------------------------------------ the packed sort vs argsort

MONEY = {"hours_per_lead": 1.5, "capacity_hours": 20.0, "cost_per_lead": 40.0, "deal_value": 900.0, "win_rate": 0.3}
# Few distinct values (heavy ties), both zeros, subnormals, and the ends of the float range.
ODD_SCORES = (0.0, -0.0, 5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 0.1, 0.3, 0.7, 1.0, 1.5, 1e300,
              sys.float_info.max)


@st.composite
def odd_leads(draw, pool=ODD_SCORES, max_size=80):
    n = draw(st.integers(2, max_size))
    scores = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    converted = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    converted[0], converted[1] = True, False  # both classes
    return np.array(scores), np.array(converted)


def sorted_by_argsort(scores, converted):
    """The leads sorted by the general path, without probabilities: probabilities that are not
    the scores object (here an equal copy) take that path whatever the scores."""
    return dataclasses.replace(sort_leads(scores, converted, scores.copy()), probabilities=None)


@contextlib.contextmanager
def fast_path(tied: bool | None):
    """Count the calls of the sweep's two fast paths, tallying leads per score (heavily tied
    scores) and the packed sort; ``tied`` forces the choice, None leaves it to the sample."""
    with contextlib.ExitStack() as stack:
        if tied is not None:
            stack.enter_context(mock.patch.object(thresholds, "_heavily_tied", return_value=tied))
        yield (stack.enter_context(mock.patch.object(thresholds, "_tally_packed", wraps=thresholds._tally_packed)),
               stack.enter_context(mock.patch.object(thresholds, "_sort_packed", wraps=thresholds._sort_packed)))


@settings(max_examples=200, deadline=None)
@given(odd_leads(), st.booleans())
def test_both_fast_paths_give_the_argsort_sweep_exactly(data, tied):
    scores, converted = data
    economics = RoutingEconomics(**MONEY)
    with fast_path(tied) as (tally, packed):
        fast = sweep(scores, converted, **MONEY)
        assert (tally.call_count, packed.call_count) == ((1, 0) if tied else (0, 1))
        general = sweep_sorted(sorted_by_argsort(scores, converted), economics)
        assert packed.call_count == (0 if tied else 1)
    assert fast.equals(general)
    # Same tie groups, and the same counts at their ends, even for -0.0 and subnormal scores.
    assert fast["threshold"].to_list() == sorted(set(scores.tolist()), reverse=True)


@settings(max_examples=200, deadline=None)
@given(odd_leads(pool=tuple(v for v in ODD_SCORES if v <= 1)))
@example((np.array([-0.0, -0.0]), np.array([True, False])))
@example((np.array([0.1] * 7 + [0.7, 0.3] * 5), np.array([True, False] * 8 + [True])))
def test_with_the_scores_as_probabilities_expected_conversions_are_the_argsort_sums_to_the_bit(data):
    scores, converted = data
    with fast_path(tied=False) as (_, packed):
        fast = sweep(scores, converted, probabilities=scores, **MONEY)
        general = sweep(scores, converted, probabilities=scores.copy(), **MONEY)
    assert packed.call_count == 1
    assert fast.equals(general)
    # A tie group sums identical values, so its end is bit-identical whatever the order within it
    # (up to the sign of a zero sum: -0.0 + -0.0 is -0.0, and the packed sort reads -0.0 as 0.0).
    for column in ("tp", "expected_conversions"):
        np.testing.assert_array_equal((fast[column].to_numpy() + 0).view(np.int64),
                                      (general[column].to_numpy() + 0).view(np.int64))


@settings(max_examples=200, deadline=None)
@given(odd_leads(pool=tuple(v for v in ODD_SCORES if v <= 1)))
def test_tallied_expected_conversions_are_the_exact_sums_to_rounding(data):
    """The tally multiplies each score by its number of leads instead of adding it once per lead;
    every other column is the argsort path's exactly."""
    scores, converted = data
    with fast_path(tied=True) as (tally, _):
        tallied = sweep(scores, converted, probabilities=scores, **MONEY)
    assert tally.call_count == 1
    general = sweep(scores, converted, probabilities=scores.copy(), **MONEY)
    assert tallied.drop("expected_conversions").equals(general.drop("expected_conversions"))
    exact = [math.fsum(scores[scores >= t]) for t in tallied["threshold"]]
    assert tallied["expected_conversions"].to_list() == pytest.approx(exact, rel=1e-13, abs=1e-300)


def test_the_sample_sends_tied_scores_to_the_tally_and_distinct_scores_to_the_sort():
    rng = np.random.default_rng(7)
    probabilities = rng.beta(2.0, 5.0, 200_000)
    converted = rng.random(len(probabilities)) < probabilities
    for scores, tied in ((probabilities, False), (np.round(probabilities, 3), True),
                         (rng.integers(0, 101, len(probabilities)).astype(float), True)):
        with fast_path(None) as (tally, packed):
            sweep(scores, converted)
        assert (tally.call_count, packed.call_count) == ((1, 0) if tied else (0, 1))


@settings(max_examples=100, deadline=None)
@given(odd_leads(pool=(-2.0, -0.5, -5e-324, -0.0, 0.0, 0.25, 0.5, 3.0)), st.integers(0, 79))
def test_a_negative_score_takes_the_argsort_path_and_still_equals_scikit_learn(data, where):
    scores, converted = data
    scores[where % len(scores)] = -1.0
    with mock.patch.object(thresholds, "_sort_packed", wraps=thresholds._sort_packed) as packed:
        curve = sweep(scores, converted)
    assert packed.call_count == 0
    precision, recall, sk_thresholds = precision_recall_curve(converted, scores)
    np.testing.assert_array_equal(curve["threshold"].to_numpy()[::-1], sk_thresholds)
    np.testing.assert_array_equal(curve["precision"].to_numpy()[::-1], precision[:-1])
    np.testing.assert_array_equal(curve["recall"].to_numpy()[::-1], recall[:-1])


def test_the_packed_sort_keeps_each_leads_score_and_outcome():
    scores = np.array([0.5, -0.0, 1e300, 5e-324, 0.5, 0.0, 0.5])
    converted = np.array([True, True, False, False, False, False, True])
    leads = sort_leads(scores, converted)
    assert leads.thresholds.tolist() == [1e300, 0.5, 5e-324, 0.0]
    assert leads.ends.tolist() == [0, 3, 4, 6]
    # Within a group the order is unspecified: compare the outcomes per group.
    groups = np.split(leads.converted, leads.ends[:-1] + 1)
    assert [sorted(g.tolist()) for g in groups] == [[False], [False, True, True], [False], [False, True]]
    assert np.signbit(leads.thresholds).sum() == 0  # -0.0 becomes the +0.0 cut-off


@settings(max_examples=50, deadline=None)
@given(odd_leads(), st.randoms(use_true_random=False))
def test_the_packed_sort_does_not_depend_on_the_input_order(data, random):
    """So a bootstrap, which resamples positions in the sorted order, gives the same bands for the
    same leads and seed however they are listed."""
    scores, converted = data
    order = list(range(len(scores)))
    random.shuffle(order)
    leads, shuffled = sort_leads(scores, converted), sort_leads(scores[order], converted[order])
    for field in ("thresholds", "ends", "converted"):
        np.testing.assert_array_equal(getattr(leads, field), getattr(shuffled, field))


# --------------------------------------------------------------------------------- best cut-off


def brute_force_best(curve: pl.DataFrame, objective: str, beta: float = 1.0):
    positives = curve["tp"][-1]
    best_value, best_threshold = 0.0, math.inf  # routing nobody is worth 0
    for row in curve.iter_rows(named=True):
        if not row["within_capacity"]:
            continue
        value = {
            "profit": row["profit"],
            "conversions": row["tp"],
            "f_beta": (1 + beta**2) * row["tp"] / (beta**2 * positives + row["routed"]),
        }[objective]
        if value > best_value:
            best_value, best_threshold = value, row["threshold"]
    return best_threshold, best_value


@pytest.mark.parametrize("objective,beta", [("profit", 1.0), ("conversions", 1.0), ("f_beta", 1.0), ("f_beta", 2.0), ("f_beta", 0.5)])
@pytest.mark.parametrize("seed", range(5))
def test_best_cutoff_is_the_brute_force_best_within_capacity(objective, beta, seed):
    scores, converted = tied_leads(300, seed=seed, levels=30)
    curve = sweep(scores, converted, hours_per_lead=1.5, capacity_hours=200, cost_per_lead=40, deal_value=900, win_rate=0.3)
    choice = best_cutoff(curve, objective, beta=beta)
    threshold, value = brute_force_best(curve, objective, beta)
    assert choice.threshold == threshold
    assert choice.value == pytest.approx(value)
    assert choice.routed * 1.5 <= 200


def test_f_beta_of_one_is_f1_and_f1_is_scikit_learns():
    scores, converted = tied_leads(400, seed=3)
    curve = sweep(scores, converted)
    choice = best_cutoff(curve, "f_beta", beta=1.0)
    assert choice.value == pytest.approx(curve["f1"].max())
    for row in curve.iter_rows(named=True):
        assert row["f1"] == pytest.approx(f1_score(converted, scores >= row["threshold"]))


def test_route_nobody_when_every_cut_off_loses_money():
    curve = sweep([0.9, 0.5, 0.1], [True, False, False], cost_per_lead=100, deal_value=50, win_rate=1.0)
    choice = best_cutoff(curve, "profit")
    assert choice.routes_nobody and choice.threshold == math.inf and choice.routed == 0 and choice.row is None


def test_route_nobody_when_no_cut_off_fits_the_capacity():
    # The top score is shared by three leads: routing any of them routes all three.
    curve = sweep([0.9, 0.9, 0.9, 0.1], [True, False, True, False], hours_per_lead=1, capacity_hours=2, deal_value=100)
    assert not curve["within_capacity"].any()
    assert best_cutoff(curve, "conversions").routes_nobody


def test_route_nobody_says_every_cut_off_within_capacity_loses_money():
    curve = sweep([0.9, 0.5, 0.1], [True, False, False], cost_per_lead=100, deal_value=50, win_rate=1.0,
                  capacity_hours=10)
    choice = best_cutoff(curve, "profit", capacity_hours=10)
    assert not choice.nothing_fits_capacity
    assert choice.describe() == "route nobody (profit of every cut-off within capacity is <= 0)"


def test_zero_capacity_says_it_admits_no_lead_although_every_cut_off_makes_money():
    curve = sweep([0.9, 0.5, 0.1], [True, True, False], hours_per_lead=1.5, capacity_hours=0, cost_per_lead=60,
                  deal_value=20_000, win_rate=0.2)
    assert (curve["profit"] > 0).all() and not curve["within_capacity"].any()
    choice = best_cutoff(curve, "profit", capacity_hours=0)
    assert choice.routes_nobody and choice.nothing_fits_capacity
    assert choice.describe() == "route nobody (capacity 0 h admits no lead at 1.5 h per lead)"
    assert choice.nobody_reason == "capacity 0 h admits no lead at 1.5 h per lead"


def test_capacity_below_the_top_tie_says_how_many_leads_it_admits_and_what_the_top_cut_off_routes():
    curve = sweep([0.9, 0.9, 0.9, 0.1], [True, False, True, False], hours_per_lead=1, capacity_hours=2, deal_value=100)
    assert best_cutoff(curve, "conversions", capacity_hours=2).describe() == (
        "route nobody (capacity 2 h admits 2 lead(s) at 1 h per lead, but the highest cut-off, score >= 0.9, "
        "routes 3 tied lead(s), 3 h)"
    )
    # Without the limit named, it still says that nothing fits rather than blaming the money.
    assert best_cutoff(curve, "conversions").describe() == (
        "route nobody (no cut-off fits the capacity: the highest, score >= 0.9, routes 3 lead(s), 3 h)"
    )


def test_ties_in_the_objective_go_to_the_higher_threshold():
    # Routing the last lead adds no conversion: same conversions, fewer leads.
    curve = sweep([0.9, 0.5, 0.1], [True, True, False])
    assert best_cutoff(curve, "conversions").threshold == 0.5


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: sweep([0.1, 0.2], [True, True]), "converted has one class only: all 2 lead(s) are converted"),
        (lambda: sweep([0.1, 0.2], [0, 0]), "converted has one class only: all 2 lead(s) are not converted"),
        (lambda: sweep([0.1, float("nan"), 0.3], [1, 0, 1]), "scores must be finite, got 1 NaN or infinite value(s) at position(s) 1"),
        (lambda: sweep([], []), "scores is empty: there are no leads to sweep"),
        (lambda: sweep([0.1, 0.2], [1, 0], cost_per_lead=-5), "cost_per_lead must be >= 0, got -5"),
        (lambda: sweep([0.1, 0.2], [1, 0], deal_value=-1.0), "deal_value must be >= 0, got -1.0"),
        (lambda: sweep([0.1, 0.2], [1, 0], hours_per_lead=-1), "hours_per_lead must be >= 0, got -1"),
        (lambda: sweep([0.1, 0.2], [1, 0], capacity_hours=-3), "capacity_hours must be >= 0, got -3"),
        (lambda: sweep([0.1, 0.2], [1, 0], win_rate=1.5), "win_rate must be <= 1, got 1.5"),
        (lambda: sweep([0.1, 0.2], [1, 0, 1]), "converted must have one value per lead (2), got 3"),
        (lambda: sweep([0.1, 0.2], [1, 2]), "converted must be booleans or 0/1, got 2"),
        (lambda: sweep([0.1, 0.2], [1, 0], probabilities=[0.5, 1.2]), "probabilities must lie in [0, 1], got 1.2"),
        (lambda: sweep(["a", "b"], [1, 0]), "scores must be numbers"),
        (lambda: best_cutoff(sweep([0.1, 0.2], [1, 0]), "revenue"), "objective must be one of profit, f_beta, conversions; got 'revenue'"),
        (lambda: best_cutoff(sweep([0.1, 0.2], [1, 0]), "f_beta", beta=0), "beta must be > 0, got 0"),
    ],
)
def test_bad_input_gets_a_message_naming_the_parameter_and_value(call, message):
    with pytest.raises(InvalidArgument) as error:
        call()
    assert message in str(error.value)
