"""The territory model: every returned plan keeps every rule (checked here with plain numpy, not
with the package's own check), tiny plans are optimal against brute force, and impossible rules
are explained in a user's terms with the soft plan's violations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_lab.errors import InvalidArgument
from crm_lab.territory import (
    SolverOptions,
    TerritoryData,
    TerritorySettings,
    check_plan,
    derive_rules,
    plan_territories,
)
from crm_lab.territory.check import plan_objective
from crm_lab.territory.model import NO_SINGLE_CAUSE
from crm_lab.territory.synthetic import random_territory

FAST = SolverOptions(time_limit=10)


def data_of(accounts, reps, *, workload_by_rep=None) -> TerritoryData:
    """accounts: (id, lat, lon, hours, potential, owner); reps: (id, lat, lon, capacity, fte)."""
    a = list(zip(*accounts))
    r = list(zip(*reps))
    return TerritoryData(
        account_ids=a[0], account_lat=a[1], account_lon=a[2],
        workload=a[3] if workload_by_rep is None else workload_by_rep, potential=a[4], current_rep=a[5],
        rep_ids=r[0], rep_home_lat=r[1], rep_home_lon=r[2], capacity=r[3], fte=r[4], company_id="c1",
    )


def assert_keeps_every_rule(data: TerritoryData, s: TerritorySettings, plan_vector: np.ndarray) -> None:
    """The rules, recomputed from scratch for a plan that claims to keep them all."""
    n, m = data.n_accounts, data.n_reps
    assert plan_vector.shape == (n,) and ((plan_vector >= 0) & (plan_vector < m)).all()
    hours = data.workload_matrix()[np.arange(n), plan_vector]
    load = np.bincount(plan_vector, weights=hours, minlength=m)
    share = data.fte / data.fte.sum()
    target = share * data.account_workload().sum()
    eps = 1e-6 * np.maximum(target, 1)
    assert (load <= data.capacity + 1e-6 * np.maximum(data.capacity, 1)).all()
    assert (load <= target * (1 + s.tolerance) + eps).all()
    assert (load >= target * (1 - s.tolerance) - eps).all()
    ptol = s.effective_potential_tolerance
    if math.isfinite(ptol):
        potential = np.bincount(plan_vector, weights=data.potential, minlength=m)
        ptarget = share * data.potential.sum()
        peps = 1e-6 * np.maximum(ptarget, 1)
        assert (potential <= ptarget * (1 + ptol) + peps).all()
        assert (potential >= ptarget * (1 - ptol) - peps).all()
    rep_of = {rep: j for j, rep in enumerate(data.rep_ids)}
    for account, rep in s.locks:
        assert plan_vector[list(data.account_ids).index(account)] == rep_of[rep]
    for account, rep in s.forbidden:
        assert plan_vector[list(data.account_ids).index(account)] != rep_of[rep]
    current = np.array([rep_of.get(r, -1) for r in data.current_rep])
    moved = (current >= 0) & (plan_vector != current)
    if s.max_moves is not None:
        assert moved.sum() <= s.max_moves
    if s.max_moved_potential is not None:
        assert data.potential[moved].sum() <= s.max_moved_potential * (1 + 1e-9)
    if s.max_distance_km is not None:
        rules = derive_rules(data, s)
        far = rules.distance_km[np.arange(n), plan_vector] > s.max_distance_km
        locked = np.zeros(n, bool)
        for account, _ in s.locks:
            locked[list(data.account_ids).index(account)] = True
        assert not (far & (plan_vector != current) & ~locked).any()


# ----------------------------------------------------------------------- plans that exist


def two_towns(owner="r1", potential=(10.0, 10.0, 10.0, 10.0)):
    accounts = [("a1", 0, 0, 100.0, potential[0], owner), ("a2", 0, 0.1, 100.0, potential[1], owner),
                ("a3", 1, 1, 100.0, potential[2], owner), ("a4", 1, 1.1, 100.0, potential[3], owner)]
    reps = [("r1", 0, 0, 400.0, 1.0), ("r2", 1, 1, 400.0, 1.0)]
    return data_of(accounts, reps)


def test_a_balanced_compact_plan_moves_the_far_accounts_to_the_near_rep():
    data = two_towns()
    plan = plan_territories(data, TerritorySettings(tolerance=0.0), FAST)
    assert (plan.status, plan.kind) == ("optimal", "hard")
    assert plan.assignments()["rep_id"].to_list() == ["r1", "r1", "r2", "r2"]
    assert plan.summary()["moved"] == 2
    assert plan.objective == pytest.approx(plan_objective(plan.rules, plan.rep_of_account))
    # km: a2 is 11 km from r1; a4 11 km from r2; plus 2 moves at the default 50.
    assert plan.objective == pytest.approx(2 * 11.12 + 100, abs=0.1)
    assert plan.violations == []


def test_a_high_move_weight_keeps_accounts_where_the_bands_allow():
    data = two_towns()
    plan = plan_territories(data, TerritorySettings(tolerance=1.0, move_weight=1e6), FAST)
    assert plan.assignments()["rep_id"].to_list() == ["r1"] * 4
    assert plan.summary()["moved"] == 0


def test_locks_forbidden_pairs_and_fte_shares_are_kept():
    data = data_of(
        [(f"a{i}", 0, i * 0.1, 100.0, 1.0, "r1") for i in range(6)],
        [("r1", 0, 0, 1000.0, 1.0), ("r2", 0, 0.5, 1000.0, 0.5)],
    )
    s = TerritorySettings(tolerance=0.0, potential_tolerance=math.inf, locks=[("a0", "r2")], forbidden=[("a5", "r2")])
    plan = plan_territories(data, s, FAST)
    assert plan.status == "optimal"
    loads = plan.rep_loads()
    assert loads["workload_hours"].to_list() == [400.0, 200.0]  # FTE 1 : 0.5 of 600 h
    assignment = dict(zip(*plan.assignments().select("account_id", "rep_id").to_dict(as_series=False).values()))
    assert assignment["a0"] == "r2" and assignment["a5"] == "r1"
    assert_keeps_every_rule(data, s, plan.rep_of_account)


def test_the_radius_never_forces_a_move_but_bars_new_far_reps():
    data = data_of(
        [("near", 0, 0.1, 100.0, 1.0, "r2"), ("far", 0, 5, 100.0, 1.0, None)],
        [("r1", 0, 0, 1000.0, 1.0), ("r2", 0, 10, 1000.0, 1.0)],
    )
    s = TerritorySettings(tolerance=1.0, potential_tolerance=math.inf, max_distance_km=300, move_weight=0)
    rules = derive_rules(data, s)
    assert rules.allowed.tolist() == [[True, True], [False, False]]  # current rep kept; 'far' reaches no one
    plan = plan_territories(data, s, FAST)
    assert plan.status == "infeasible"
    assert plan.diagnosis == ["account far has no rep it may go to: no rep is within the 300 km radius and it has no current rep"]
    assert [v.kind for v in plan.violations] == ["radius"]


# ------------------------------------------------------------------ impossible, explained


def test_total_workload_above_total_capacity_is_named_with_the_hours_short():
    data = data_of([("a1", 0, 0, 900.0, 1.0, "r1"), ("a2", 0, 0, 900.0, 1.0, "r1")], [("r1", 0, 0, 1500.0, 1.0)])
    plan = plan_territories(data, TerritorySettings(), FAST)
    assert plan.status == "infeasible" and plan.kind == "soft"
    assert plan.diagnosis[0] == "total workload 1,800 h exceeds total capacity 1,500 h by 300 h"
    [violation] = plan.violations
    assert (violation.kind, violation.subject, violation.excess) == ("capacity", "r1", 300.0)
    assert violation.text == "r1: workload 1,800 h exceeds capacity 1,500 h by 300 h"


def test_an_account_too_big_for_every_band_is_named():
    data = data_of(
        [("big", 0, 0, 400.0, 1.0, "r1"), ("a2", 0, 0, 100.0, 1.0, "r1"), ("a3", 0, 0, 100.0, 1.0, "r2"),
         ("a4", 0, 0, 100.0, 1.0, "r2")],
        [("r1", 0, 0, 1000.0, 1.0), ("r2", 0, 0, 1000.0, 1.0)],
    )
    plan = plan_territories(data, TerritorySettings(tolerance=0.1, potential_tolerance=math.inf), FAST)
    assert plan.status == "infeasible"
    assert plan.diagnosis == [
        "account big alone needs 400 h, more than any rep it may go to can take (largest: r1's workload band's "
        "upper end 385 h)"
    ]
    assert {v.kind for v in plan.violations} == {"workload_band"}
    assert plan.kind == "soft" and plan.summary()["accounts"] == 4


def test_an_account_too_big_for_the_potential_band_is_named():
    data = two_towns(potential=(70.0, 10.0, 10.0, 10.0))
    plan = plan_territories(data, TerritorySettings(tolerance=0.5, potential_tolerance=0.2), FAST)
    assert plan.status == "infeasible"
    # Two equal reps share 100 of potential: target 50, upper end 60 at 20%; a1 needs 70 / 50 - 1 = 0.4.
    assert plan.diagnosis[0] == (
        "account a1 alone has potential 70, above the upper end of the potential band of every rep it may go to "
        "(largest: r1's 60, its target 50 + 20.0%); raise the potential tolerance to at least 0.4 "
        "(--potential-tolerance 0.4), leave potential unbalanced (--potential-tolerance inf), or split the account"
    )
    assert plan.seconds < 5  # found by arithmetic before any solve; only the soft plan is solved
    # The tolerance it names is enough for that account.
    enough = plan_territories(data, TerritorySettings(tolerance=0.5, potential_tolerance=0.4), FAST)
    assert not any(reason.startswith("account a1 alone") for reason in enough.diagnosis)


@pytest.mark.parametrize(
    ("locks", "forbidden", "reason"),
    [
        ([("a1", "r1"), ("a1", "r2")], [], "locks conflict: account a1 is locked to both r1 and r2"),
        ([("a1", "r2")], [("a1", "r2")], "locks conflict: account a1 is locked to r2, a pair that is also forbidden"),
        ([("a1", "r1"), ("a2", "r1"), ("a3", "r1")], [],
         "locks conflict: accounts locked to r1 bring workload 300 h, more than its capacity and band allow (220 h)"),
    ],
)
def test_conflicting_locks_are_named(locks, forbidden, reason):
    data = two_towns()
    plan = plan_territories(data, TerritorySettings(tolerance=0.1, potential_tolerance=math.inf, locks=locks,
                                                    forbidden=forbidden), FAST)
    assert plan.status == "infeasible"
    assert reason in plan.diagnosis
    assert plan.kind == "soft" and plan.violations  # each violation of the soft plan is listed
    assert plan.violations == check_plan(data, plan.settings, plan.rules, plan.rep_of_account)


def test_a_move_budget_below_what_balancing_needs_is_named():
    plan = plan_territories(two_towns(), TerritorySettings(tolerance=0.0, max_moves=1), FAST)
    assert plan.diagnosis == [
        "balancing needs at least 2 moves, more than the budget of 1: r1 is 200 h over its workload band; "
        "r2 is 200 h under its workload band"
    ]
    kinds = sorted(v.kind for v in plan.violations)
    assert kinds in (["max_moves"], ["workload_band", "workload_band"])


def test_a_rep_out_of_reach_of_its_band_is_named():
    data = data_of([(f"a{i}", 0, 0, 100.0, 1.0, "r1") for i in range(4)],
                   [("r1", 0, 0, 1000.0, 1.0), ("r2", 0, 20, 1000.0, 1.0)])
    plan = plan_territories(data, TerritorySettings(tolerance=0.5, potential_tolerance=math.inf, max_distance_km=100), FAST)
    assert plan.diagnosis == [
        "r2 can be given at most 0 h of workload (radius, forbidden pairs, locks), below the lower end 100 h of its band"
    ]


def test_rules_that_only_clash_together_say_so_and_show_the_soft_plan():
    # Either band alone can be met; together they cannot (two accounts each, but a4 alone is half the potential).
    data = two_towns(potential=(1.0, 1.0, 1.0, 3.0))
    plan = plan_territories(data, TerritorySettings(tolerance=0.0, potential_tolerance=0.0), FAST)
    assert plan.status == "infeasible"
    assert plan.diagnosis == [NO_SINGLE_CAUSE]
    assert plan.violations and all(v.kind in ("workload_band", "potential_band") for v in plan.violations)


def test_without_soft_fallback_an_impossible_plan_has_no_assignments():
    data = data_of([("a1", 0, 0, 900.0, 1.0, "r1"), ("a2", 0, 0, 900.0, 1.0, "r1")], [("r1", 0, 0, 1500.0, 1.0)])
    plan = plan_territories(data, TerritorySettings(soft_fallback=False), FAST)
    assert (plan.status, plan.kind, plan.has_plan) == ("infeasible", "none", False)
    assert (plan.rep_of_account == -1).all()


def test_bad_settings_name_the_parameter_and_the_value():
    with pytest.raises(InvalidArgument, match=r"tolerance must be a number >= 0 or inf \(workload unbalanced\); got -0.1"):
        TerritorySettings(tolerance=-0.1)
    with pytest.raises(InvalidArgument, match="max_moves must be an integer >= 0 or None; got 2.5"):
        TerritorySettings(max_moves=2.5)
    with pytest.raises(InvalidArgument, match="distance_to must be 'home' or 'territory'; got 'office'"):
        TerritorySettings(distance_to="office")
    with pytest.raises(InvalidArgument, match="locks: unknown account 'nope'"):
        plan_territories(two_towns(), TerritorySettings(locks=[("nope", "r1")]), FAST)
    with pytest.raises(InvalidArgument, match="fte must be > 0; got 0.0"):
        data_of([("a1", 0, 0, 1.0, 1.0, None)], [("r1", 0, 0, 10.0, 0.0)])


# -------------------------------------------------------------- properties on random worlds


@st.composite
def tiny_worlds(draw):
    n = draw(st.integers(2, 7))
    m = draw(st.integers(1, 3))
    data = random_territory(n, m, seed=draw(st.integers(0, 10_000)), spread_km=draw(st.sampled_from([20.0, 300.0])))
    ids = list(data.account_ids)
    reps = list(data.rep_ids)
    pair = st.tuples(st.sampled_from(ids), st.sampled_from(reps))
    s = TerritorySettings(
        tolerance=draw(st.sampled_from([0.1, 0.3, 0.6, 1.0])),
        potential_tolerance=draw(st.sampled_from([None, math.inf, 0.8])),
        max_moves=draw(st.sampled_from([None, 0, 1, 3])),
        max_distance_km=draw(st.sampled_from([None, 200.0])),
        move_weight=draw(st.sampled_from([0.0, 50.0])),
        locks=draw(st.lists(pair, max_size=1)),
        forbidden=draw(st.lists(pair, max_size=2)),
    )
    return data, s


def brute_force_best(data, s, rules):
    best = None
    for combo in itertools.product(range(data.n_reps), repeat=data.n_accounts):
        vector = np.array(combo)
        if not check_plan(data, s, rules, vector):
            value = plan_objective(rules, vector)
            best = value if best is None else min(best, value)
    return best


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_worlds())
def test_tiny_plans_are_optimal_against_brute_force_and_keep_every_rule(world):
    data, s = world
    plan = plan_territories(data, s, FAST)
    best = brute_force_best(data, s, plan.rules)
    if best is None:
        assert plan.status == "infeasible"
        assert plan.diagnosis
        assert plan.kind == "soft" and plan.violations == check_plan(data, s, plan.rules, plan.rep_of_account)
    else:
        assert plan.status == "optimal", plan.message
        assert plan.objective == pytest.approx(best, rel=1e-4, abs=1e-6)
        assert_keeps_every_rule(data, s, plan.rep_of_account)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 1000), st.sampled_from([0.15, 0.3]), st.sampled_from([None, 10, 40]))
def test_larger_random_plans_keep_every_rule_whatever_the_solver_proves(seed, tolerance, max_moves):
    data = random_territory(120, 8, seed=seed)
    s = TerritorySettings(tolerance=tolerance, potential_tolerance=0.5, max_moves=max_moves,
                          locks=[(data.account_ids[0], data.rep_ids[1])])
    plan = plan_territories(data, s, SolverOptions(time_limit=3, gap_rel=0.01))
    assert plan.status in ("optimal", "feasible", "infeasible", "error")
    if plan.kind == "hard":
        assert_keeps_every_rule(data, s, plan.rep_of_account)
        assert plan.gap is not None and (plan.status == "optimal") == (plan.gap <= 1e-4)
    elif plan.kind == "soft":
        assert plan.violations == check_plan(data, s, plan.rules, plan.rep_of_account)


def test_no_plan_within_the_time_limit_is_its_own_status_with_the_soft_plan_offered(monkeypatch):
    """Not 'error': the solver did not fail, it ran out of time before finding any plan that keeps
    every rule. The soft plan is offered, as for infeasible rules."""
    from crm_lab.territory import model
    from crm_lab.territory.solve import SolveOutcome

    data = data_of([("a1", 0, 0, 900.0, 1.0, "r1"), ("a2", 0, 0, 900.0, 1.0, "r1")], [("r1", 0, 0, 1500.0, 1.0)])
    real_solve = model._solve
    message = "no feasible solution found within the time limit of 5 s (infeasibility not proven)"

    def hard_times_out(rules, settings, options, *, relax, start):
        if relax:
            return real_solve(rules, settings, options, relax=relax, start=start)
        return SolveOutcome("time_limit", "highs", "time limit", False, None, None, None, 5.0, message), None

    monkeypatch.setattr(model, "_solve", hard_times_out)
    plan = plan_territories(data, TerritorySettings(), FAST)
    assert (plan.status, plan.kind, plan.message) == ("time_limit", "soft", message)
    assert plan.diagnosis[0] == "total workload 1,800 h exceeds total capacity 1,500 h by 300 h"
    assert plan.describe().splitlines()[0].startswith("territory plan for c1: time_limit, 2 accounts")
