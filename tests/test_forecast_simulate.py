"""The simulation core against closed forms, exact distributions and its own promises
(reproducibility, common random numbers, bounded blocks)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import crm_lab.forecast.metrics
import crm_lab.forecast.periods
import crm_lab.forecast.scenarios
import crm_lab.forecast.simulation
from crm_lab.errors import InvalidArgument
from crm_lab.forecast.simulation import BLOCK_TRIALS, GroupCodes, Portfolio, simulate


def portfolio_of(n=40, seed=0, periods=3):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.9, n)
    amount = np.round(rng.uniform(1_000, 50_000, n), 2)
    cdf = np.cumsum(rng.dirichlet(np.ones(periods + 1), n)[:, :periods], axis=1)
    return Portfolio.fixed(p, amount, cdf)


@pytest.mark.parametrize("module", [crm_lab.forecast.simulation, crm_lab.forecast.metrics, crm_lab.forecast.periods,
                                    crm_lab.forecast.scenarios])
def test_docstring_examples_run(module):
    assert doctest.testmod(module).failed == 0


def test_mean_and_variance_match_the_closed_forms_with_fixed_probabilities():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 200)
    amount = rng.uniform(1_000, 80_000, 200)
    trials = 40_000
    totals = simulate([Portfolio.fixed(p, amount)], trials=trials, seed=3)[0].totals()[:, 0]
    mean, var = np.sum(p * amount), np.sum(p * (1 - p) * amount**2)
    assert abs(totals.mean() - mean) < 4 * np.sqrt(var / trials)
    # the sample variance of n draws has a standard error of about var * sqrt(2 / n) (near normal)
    assert abs(totals.var() - var) < 4 * var * np.sqrt(2 / trials)


def test_each_period_gets_its_share_of_the_closes():
    port = portfolio_of(n=120, seed=2)
    trials = 40_000
    out = simulate([port], trials=trials, seed=5)[0]
    share = np.diff(np.hstack([np.zeros((port.deals, 1)), port.close_cdf]), axis=1)
    for k in range(3):
        q = port.win_probability * share[:, k]
        mean, var = np.sum(q * port.amount), np.sum(q * (1 - q) * port.amount**2)
        assert abs(out.totals()[:, k].mean() - mean) < 4 * np.sqrt(var / trials)
        assert abs(out.deal_wins[:, k] / trials - q).max() < 4 * np.sqrt(0.25 / trials)
    # what falls after the window is not booked
    assert out.deal_wins.sum() < trials * port.win_probability.sum()


def exact_distribution(p, amount_units):
    """P(total = x) for independent wins, by dynamic programming over the total."""
    dist = np.zeros(int(np.sum(amount_units)) + 1)
    dist[0] = 1.0
    for pi, a in zip(p, amount_units):
        shifted = np.zeros_like(dist)
        shifted[a:] = dist[: len(dist) - a]
        dist = (1 - pi) * dist + pi * shifted
    return dist


def test_quantiles_agree_with_the_exact_distribution_of_a_small_portfolio():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.1, 0.9, 12)
    units = rng.integers(1, 40, 12)
    cdf = np.cumsum(exact_distribution(p, units))
    trials = 100_000
    totals = simulate([Portfolio.fixed(p, units * 100.0)], trials=trials, seed=9)[0].totals()[:, 0] / 100
    for level in (0.05, 0.1, 0.5, 0.9, 0.95):
        mc = int(round(np.quantile(totals, level, method="inverted_cdf")))
        tolerance = 4 * np.sqrt(level * (1 - level) / trials)
        below = cdf[mc - 1] if mc > 0 else 0.0
        assert below <= level + tolerance and cdf[mc] >= level - tolerance, (level, mc, below, cdf[mc])


def test_same_seed_same_numbers_and_trials_do_not_depend_on_how_many_run():
    port = portfolio_of()
    a = simulate([port], trials=3000, seed=7)[0]
    b = simulate([port], trials=3000, seed=7)[0]
    assert np.array_equal(a.totals(), b.totals()) and np.array_equal(a.deal_wins, b.deal_wins)
    longer = simulate([port], trials=BLOCK_TRIALS * 3 + 500, seed=7)[0]
    assert np.array_equal(longer.totals()[:3000], a.totals())
    assert not np.array_equal(simulate([port], trials=3000, seed=8)[0].totals(), a.totals())


def test_a_neutral_copy_reproduces_the_baseline_exactly():
    port = portfolio_of()
    base, same = simulate([port, port.with_changes()], trials=2500, seed=1)
    assert np.array_equal(base.totals(), same.totals())
    assert np.array_equal(base.deal_value, same.deal_value)


def test_common_random_numbers_make_a_scenario_difference_far_less_noisy():
    port = portfolio_of(n=300, seed=3)
    better = port.with_changes(win_multiplier=np.full(port.deals, 1.02))
    trials = 4000
    base, scen = simulate([port, better], trials=trials, seed=2)
    paired = (scen.totals() - base.totals()).sum(axis=1)
    independent = (simulate([better], trials=trials, seed=99)[0].totals() - base.totals()).sum(axis=1)
    assert paired.std() < independent.std() / 5
    # and the paired difference is what the knob does: + 2% of every win probability
    q = port.win_probability * port.close_cdf[:, -1]
    assert abs(paired.mean() - 0.02 * np.sum(q * port.amount)) < 4 * paired.std() / np.sqrt(trials)


def test_a_shared_parameter_draw_correlates_the_deals():
    port = portfolio_of(n=300, seed=6).with_changes(shock_sd=np.array([0.0]))
    shocked = port.with_changes(shock_sd=np.array([0.4]))
    fixed = simulate([port], trials=8000, seed=1)[0].totals().sum(axis=1)
    drawn = simulate([shocked], trials=8000, seed=1)[0].totals().sum(axis=1)
    assert drawn.std() > 1.5 * fixed.std()
    assert abs(drawn.mean() - fixed.mean()) < 0.05 * fixed.mean()


def test_groups_and_deals_add_up_to_the_company():
    port = portfolio_of(n=50)
    codes = np.arange(50) % 3
    grouped = port.with_changes(groups={"team": GroupCodes(("a", "b", "c"), codes, np.zeros(0, np.int64))})
    out = simulate([grouped], trials=2000, seed=4)[0]
    assert np.allclose(out.group_totals["team"].sum(axis=2), out.totals(), rtol=1e-5)
    assert np.isclose(out.deal_value.sum(), out.open_totals.sum())


def test_new_pipeline_is_a_compound_poisson_sum_of_the_sizes():
    port = Portfolio.fixed([0.0], [0.0], np.ones((1, 2))).with_changes(
        new_expected=np.array([3.0, 5.0]), new_sizes=np.array([100.0, 1000.0]), new_size_weight=np.array([3.0, 1.0])
    )
    trials = 40_000
    out = simulate([port], trials=trials, seed=1)[0]
    size_mean, size_square = (3 * 100 + 1000) / 4, (3 * 100**2 + 1000**2) / 4
    for k, lam in enumerate((3.0, 5.0)):
        x = out.new_totals[:, k]
        assert abs(x.mean() - lam * size_mean) < 4 * np.sqrt(lam * size_square / trials)
        assert abs(x.var() / (lam * size_square) - 1) < 0.05
    assert out.open_totals.sum() == 0
    doubled = port.with_changes(new_expected=port.new_expected * 2)
    base, more = simulate([port, doubled], trials=5000, seed=1)
    assert np.all(more.new_totals >= base.new_totals)  # the same first wins, then more


def test_bad_arguments_are_refused_with_the_parameter_named():
    port = portfolio_of()
    with pytest.raises(InvalidArgument, match="trials must be a positive integer, got 0"):
        simulate([port], trials=0, seed=1)
    with pytest.raises(InvalidArgument, match="seed must be a non-negative integer, got -1"):
        simulate([port], trials=10, seed=-1)
    other = portfolio_of(n=41)
    with pytest.raises(InvalidArgument, match="must share their deals"):
        simulate([port, other], trials=10, seed=1)


def test_per_deal_counts_belong_to_their_deals_when_shock_groups_interleave():
    # Deals are simulated sorted by shock group; the per-deal counts must come back in the
    # caller's order. Groups 1, 0, 2, 0, 1, ... with probabilities that tell the deals apart.
    n, trials = 12, 20_000
    group = np.array([1, 0, 2, 0, 1, 2, 2, 0, 1, 0, 2, 1])
    p = np.linspace(0.0, 0.99, n)[::-1].copy()
    p[[2, 7]] = 0.0  # one deal of group 2 and one of group 0 never win
    amount = 1_000.0 * (np.arange(n) + 1)
    port = Portfolio.fixed(p, amount).with_changes(shock_group=group, shock_sd=np.zeros(3))
    out = simulate([port], trials=trials, seed=11)[0]
    wins = out.deal_wins[:, 0]
    assert wins[2] == wins[7] == 0
    assert np.abs(wins / trials - p).max() < 4 * np.sqrt(0.25 / trials)
    # each win books the deal's own amount (no amount change in a fixed portfolio)
    assert np.allclose(out.deal_value[:, 0], wins * amount)
