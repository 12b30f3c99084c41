"""What-if: reps added and removed, plans compared side by side, and the disruption-versus-balance
curve over move budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.territory import (
    NewRep,
    SolverOptions,
    TerritorySettings,
    add_rep,
    compare_plans,
    plan_territories,
    remove_rep,
    tradeoff_curve,
    with_rep_count,
)
from crm_lab.territory.synthetic import random_territory

FAST = SolverOptions(time_limit=10, gap_rel=0.01)
LOOSE = TerritorySettings(tolerance=0.3, potential_tolerance=math.inf)


@pytest.fixture(scope="module")
def world():
    return random_territory(60, 5, seed=4)


def test_an_added_rep_takes_its_fte_share_of_the_workload(world):
    bigger = add_rep(world, NewRep("rep-new", float(world.account_lat[0]), float(world.account_lon[0]), 1600.0, 1.0))
    assert bigger.n_reps == world.n_reps + 1 and bigger.rep_is_new.tolist()[-1]
    plan = plan_territories(bigger, LOOSE, FAST)
    assert plan.kind == "hard"
    new = plan.rep_loads().filter(is_new=True).row(0, named=True)
    assert new["accounts"] > 0
    assert new["workload_lower"] <= new["workload_hours"] <= new["workload_upper"]
    assert new["workload_target"] == pytest.approx(world.account_workload().sum() / bigger.fte.sum())
    # Accounts that go to the new rep had a current rep: they count as moves.
    assert plan.summary()["moved"] >= new["accounts"]


def test_a_removed_reps_accounts_are_reassigned_not_moved():
    world = random_territory(60, 5, seed=4, utilisation=0.3)  # today's books within capacity
    gone = world.rep_ids[0]
    owned = int((world.current_rep == gone).sum())
    smaller = remove_rep(world, gone)
    plan = plan_territories(smaller, TerritorySettings(tolerance=1.0, potential_tolerance=math.inf, max_moves=0), FAST)
    assert plan.kind == "hard"
    summary = plan.summary()
    assert summary["moved"] == 0 and summary["reassigned"] == owned
    moved = plan.assignments().filter(reassigned=True)
    assert moved["previous_rep_id"].unique().to_list() == [gone]
    assert gone not in moved["rep_id"].to_list()


def test_rep_count_what_ifs_trim_or_add_reps(world):
    assert with_rep_count(world, 3).rep_ids.tolist() == world.rep_ids[:3].tolist()
    grown = with_rep_count(world, 7)
    assert grown.rep_ids.tolist()[-2:] == ["new-1", "new-2"] and grown.rep_is_new.sum() == 2
    assert np.isfinite(grown.rep_home_lat).all()
    with pytest.raises(InvalidArgument, match="rep count must be an integer >= 1; got 0"):
        with_rep_count(world, 0)


def test_plans_compare_side_by_side_with_the_current_assignment_first(world):
    base = plan_territories(world, LOOSE, FAST)
    cheap = plan_territories(world, TerritorySettings(tolerance=0.3, potential_tolerance=math.inf, max_moves=5), FAST)
    table = compare_plans({"free": base, "5 moves": cheap})
    assert table["plan"].to_list() == ["current", "free", "5 moves"]
    for column in ("status", "moved", "moved_potential", "total_distance_km", "max_workload_deviation",
                   "max_potential_deviation"):
        assert column in table.columns
    rows = {row["plan"]: row for row in table.iter_rows(named=True)}
    assert rows["current"]["moved"] == 0
    assert rows["5 moves"]["moved"] <= 5 or rows["5 moves"]["kind"] == "soft"
    assert rows["free"]["max_workload_deviation"] <= 0.3 + 1e-6


def test_the_tradeoff_curve_buys_balance_with_moves():
    data = random_territory(16, 3, seed=2)
    curve = tradeoff_curve(data, [0, 2, 4, 16], TerritorySettings(tolerance=0.05, potential_tolerance=math.inf),
                           SolverOptions(time_limit=10))
    assert curve["max_moves"].to_list() == [0, 2, 4, 16]
    assert (curve["moved"] <= curve["max_moves"]).all()  # soft plans keep the budget too
    excess = curve["band_excess"].to_list()
    assert all(later <= earlier + 1e-6 for earlier, later in zip(excess, excess[1:]))
    assert excess[0] > 0  # no moves: the current books are out of balance
    assert curve.filter(kind="hard")["band_excess"].to_list() == [0.0] * curve.filter(kind="hard").height


def test_new_rep_text_is_parsed_and_checked():
    assert NewRep.parse("r9:51.5:-0.1:1200:0.8") == NewRep("r9", 51.5, -0.1, 1200.0, 0.8)
    with pytest.raises(InvalidArgument, match=r"add_rep must be ID:LAT:LON:CAPACITY\[:FTE\]; got 'r9:51.5'"):
        NewRep.parse("r9:51.5")
    with pytest.raises(InvalidArgument, match="add_rep: home_lat must be in"):
        NewRep.parse("r9:95:0:1200")
    with pytest.raises(InvalidArgument, match="remove_rep: unknown rep 'ghost'"):
        remove_rep(random_territory(5, 2), "ghost")
