"""The assignment core against the OR-Library GAP benchmark, brute force, and its own honesty:
optima reproduced, a time-limited stop never called optimal, every plan re-checked."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_lab.errors import InvalidArgument
from crm_lab.territory import assign, check_assignment
from crm_lab.territory.orlib import read_gap_file, read_known_values
from crm_lab.territory.solve import judge_status, relative_gap

GAP_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "gap"
needs_gap = pytest.mark.skipif(
    not (GAP_DIR / "known_values.tsv").exists(),
    reason=f"OR-Library GAP instances not found at {GAP_DIR} (CI clones the repo beside shared/)",
)


def instances(stem: str):
    return read_gap_file(GAP_DIR / f"{stem}.txt")


@pytest.fixture(scope="module")
def known():
    return read_known_values(GAP_DIR / "known_values.tsv")


@needs_gap
def test_every_file_parses_into_the_instances_the_known_values_name(known):
    names = {name for (name, _sense) in known}
    parsed = [inst for k in [*range(1, 13), "a", "b", "c", "d"] for inst in instances(f"gap{k}")]
    assert len(parsed) == 60 + 24
    assert {inst.name for inst in parsed} == names
    c515 = instances("gap1")[0]
    assert c515.shape == (5, 15) and c515.cost.shape == (15, 5)  # accounts x reps
    assert c515.cost[0, :3].tolist() == [17.0, 23.0, 16.0]  # column 1 of the file's agent rows


@needs_gap
@pytest.mark.parametrize("stem", [f"gap{k}" for k in range(1, 13)])
def test_gap1_to_gap12_as_maximisation_reproduce_every_known_optimum(stem, known):
    for inst in instances(stem):
        result = assign(inst.cost, inst.workload, inst.capacity, sense="max", time_limit=60)
        best = known[(inst.name, "max")]
        assert best.proven_optimal
        assert result.status == "optimal", (inst.name, result.message)
        assert result.objective == best.best_known, inst.name
        assert result.bound >= result.objective - 1e-6 and result.gap <= 1e-4
        assert result.problems == []


@needs_gap
@pytest.mark.parametrize("name", ["a05100", "b05100", "c05100", "c10100"])
def test_named_abc_instances_as_minimisation_are_proven_optimal(name, known):
    inst = next(i for i in instances(f"gap{name[0]}") if i.name == name)
    result = assign(inst.cost, inst.workload, inst.capacity, sense="min", time_limit=60)
    assert result.status == "optimal", result.message
    assert result.objective == known[(name, "min")].best_known
    assert result.bound <= result.objective + 1e-6


@needs_gap
def test_a_time_limited_type_d_run_is_feasible_with_its_gap_never_optimal(known):
    inst = next(i for i in instances("gapd") if i.name == "d20200")
    result = assign(inst.cost, inst.workload, inst.capacity, sense="min", time_limit=1.0)
    assert result.status == "feasible", result.message
    assert result.solver_status == "time limit"
    assert result.gap > 1e-4 and result.bound < result.objective
    assert result.gap == pytest.approx((result.objective - result.bound) / result.objective)
    assert result.objective >= known[("d20200", "min")].bound  # never better than what is provable
    assert "relative gap" in result.message
    objective, problems = check_assignment(result.rep_of_account, inst.cost, inst.workload, inst.capacity,
                                           np.ones(inst.cost.shape, dtype=bool))
    assert problems == [] and objective == result.objective


@needs_gap
def test_cbc_fallback_is_just_as_honest_about_a_time_limit():
    inst = next(i for i in instances("gapd") if i.name == "d05100")
    result = assign(inst.cost, inst.workload, inst.capacity, sense="min", solver="cbc", time_limit=2.0)
    assert result.solver == "cbc"
    assert result.status == "feasible"
    assert result.bound is not None and result.gap > 1e-4


@needs_gap
def test_a_loose_gap_rel_stop_is_feasible_not_optimal():
    inst = next(i for i in instances("gapd") if i.name == "d10100")
    result = assign(inst.cost, inst.workload, inst.capacity, sense="min", gap_rel=0.05, time_limit=30)
    assert result.status == "feasible"
    assert result.solver_status == "optimal"  # what the solver itself says
    assert "not proven optimal" in result.message


def brute_force(cost, workload, capacity, sense):
    n, m = cost.shape
    best = None
    for plan in itertools.product(range(m), repeat=n):
        load = np.zeros(m)
        for i, j in enumerate(plan):
            load[j] += workload[i, j]
        if (load <= capacity + 1e-9).all():
            value = sum(cost[i, j] for i, j in enumerate(plan))
            if best is None or (value > best if sense == "max" else value < best):
                best = value
    return best


@st.composite
def small_gaps(draw):
    n = draw(st.integers(1, 6))
    m = draw(st.integers(1, 3))
    ints = st.integers(0, 30)
    cost = np.array(draw(st.lists(ints, min_size=n * m, max_size=n * m)), dtype=float).reshape(n, m)
    workload = np.array(draw(st.lists(st.integers(1, 20), min_size=n * m, max_size=n * m)), dtype=float).reshape(n, m)
    capacity = np.array(draw(st.lists(st.integers(0, 60), min_size=m, max_size=m)), dtype=float)
    return cost, workload, capacity, draw(st.sampled_from(["min", "max"]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_gaps())
def test_random_small_gaps_match_brute_force_enumeration(problem):
    cost, workload, capacity, sense = problem
    expected = brute_force(cost, workload, capacity, sense)
    result = assign(cost, workload, capacity, sense=sense, time_limit=20)
    if expected is None:
        assert result.status == "infeasible"
        assert (result.rep_of_account == -1).all()
    else:
        assert result.status == "optimal", result.message
        assert result.objective == pytest.approx(expected)
        _, problems = check_assignment(result.rep_of_account, cost, workload, capacity, np.ones(cost.shape, bool))
        assert problems == []


def test_forbidden_pairs_are_never_used_and_a_warm_start_is_taken():
    cost = np.array([[1.0, 9.0], [9.0, 1.0], [5.0, 5.0]])
    eligible = np.array([[False, True], [True, True], [True, True]])
    result = assign(cost, [1, 1, 1], [2, 2], eligible=eligible, warm_start=[1, 0, 0])
    assert result.status == "optimal"
    assert result.rep_of_account.tolist()[0] == 1
    assert result.objective == pytest.approx(9 + 1 + 5)


def test_the_independent_check_names_what_is_wrong():
    cost = np.ones((3, 2))
    workload = np.full((3, 2), 2.0)
    objective, problems = check_assignment(np.array([0, 0, -1]), cost, workload, np.array([3.0, 3.0]),
                                           np.ones((3, 2), bool))
    assert objective == 2.0
    assert problems == ["1 account(s) not assigned exactly once, e.g. account 2",
                        "rep 0 carries 4, above its capacity 3"]


def test_bad_arguments_name_the_parameter_and_the_value():
    with pytest.raises(InvalidArgument, match="sense must be 'min' or 'max'; got 'maximise'"):
        assign([[1]], [1], [1], sense="maximise")
    with pytest.raises(InvalidArgument, match=r"capacity must have one value per rep \(2\)"):
        assign([[1, 2]], [1], [1])
    with pytest.raises(InvalidArgument, match="time_limit must be a positive number of seconds or None; got -1"):
        assign([[1]], [1], [1], time_limit=-1)
    with pytest.raises(InvalidArgument, match="solver must be one of auto, highs, cbc; got 'gurobi'"):
        assign([[1]], [1], [1], solver="gurobi")
    with pytest.raises(InvalidArgument, match="cost must be finite on eligible pairs; got nan"):
        assign([[np.nan]], [1], [1])


def test_status_is_judged_from_the_bound_not_from_the_solver_word():
    assert judge_status(True, proven_optimal=True, gap=0.0) == "optimal"
    assert judge_status(True, proven_optimal=True, gap=0.02) == "feasible"  # stopped early at gap_rel
    assert judge_status(True, proven_optimal=False, gap=0.0) == "optimal"  # bound met at the time limit
    assert judge_status(True, proven_optimal=False, gap=None) == "feasible"
    assert judge_status(False, proven_optimal=False, gap=None) == "error"
    assert relative_gap(110.0, 100.0, "min") == pytest.approx(10 / 110)
    assert relative_gap(90.0, 100.0, "max") == pytest.approx(10 / 90)
    assert relative_gap(100.0, None, "min") is None


def test_cbc_takes_over_when_highs_fails_or_is_missing(monkeypatch):
    from crm_lab.territory import solve as solve_module

    cost = [[1.0, 5.0], [4.0, 2.0], [3.0, 3.0]]

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(solve_module, "_solve_highs", broken)
    result = assign(cost, [2, 2, 1], [3, 3])
    assert (result.status, result.solver, result.objective) == ("optimal", "cbc", 6.0)
    assert result.message.startswith("HiGHS failed: simulated crash; solved with CBC instead")
    assert assign(cost, [2, 2, 1], [3, 3], solver="highs").status == "error"  # no fallback when HiGHS is asked for

    monkeypatch.setattr(solve_module, "highs_available", lambda: False)
    result = assign(cost, [2, 2, 1], [3, 3])
    assert (result.status, result.solver) == ("optimal", "cbc")
    assert result.message.startswith("highspy is not installed; solved with CBC")
