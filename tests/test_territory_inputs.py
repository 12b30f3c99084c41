"""Missing inputs are named before anything is solved: an imported export without workload,
potential or rep homes is refused with what each rule needs, runs once those rules are turned
off, and never reports balance or distance it could not measure. Duplicate what-if reps."""

from __future__ import annotations

import argparse
import time
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from crm_lab.cli import main
from crm_lab.errors import InvalidArgument
from crm_lab.importers import import_export
from crm_lab.replay import replay
from crm_lab.territory import SolverOptions, TerritoryData, TerritorySettings, plan_territories, run_territory
from crm_lab.territory.command import add_territory_arguments, run_territory_command
from crm_lab.territory.inputs import MissingInputs
from crm_lab.workbench import sample_database
from tests.conftest import query

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
FAST = SolverOptions(time_limit=5, gap_rel=0.02)
ALL_OFF = ("--tolerance", "inf", "--potential-tolerance", "inf", "--distance-weight", "0")


@pytest.fixture(scope="module")
def imported_db(tmp_path_factory) -> Path:
    """The README's Salesforce sample: accounts with locations and owners but no workload_hours or
    potential; reps with neither home, capacity nor FTE."""
    db = tmp_path_factory.mktemp("byo") / "byo.duckdb"
    import_export(db, SAMPLES / "salesforce" / "c1", fmt="salesforce")
    replay(db)
    return db


def test_an_import_without_workload_potential_or_homes_is_refused_naming_each_rule(imported_db, capsys):
    assert main(["territory", "--db", str(imported_db), "--company", "c1", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "crm-lab territory: the inputs of some rules are missing for c1; nothing was solved:\n"
        "  - the workload band needs each account's workload_hours: missing for 33 of 33 accounts (acct-00001, "
        "acct-00002, acct-00003, ...); load them with a file of company_id, account_id, workload_hours, which later imports keep (the workload band can be turned off with "
        "--tolerance inf)\n"
        "  - the potential band needs each account's potential: missing for 33 of 33 accounts (acct-00001, "
        "acct-00002, acct-00003, ...); set it in the accounts export or the accounts' events (a CRM import has none), or turn it off with --potential-tolerance inf\n"
        "  - compactness needs each rep's home_lat and home_lon: missing for 8 of 8 reps (rep-0001, rep-0002, "
        "rep-0003, ...); load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude), or turn compactness off with --distance-weight 0\n"
    )


def test_with_those_rules_off_the_plan_keeps_todays_books_and_says_what_it_could_not_measure(imported_db, capsys):
    db = imported_db.parent / "byo-run.duckdb"
    shutil.copyfile(imported_db, db)
    assert main(["territory", "--db", str(db), "--company", "c1", *ALL_OFF]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("territory plan territory-") and ": optimal, 33 accounts, 8 reps, highs " in lines[0]
    assert lines[1:4] == [
        "  note: 8 of 8 reps (rep-0001, rep-0002, rep-0003, ...) have no fte: counted as 1 FTE",
        "  note: 8 of 8 reps (rep-0001, rep-0002, rep-0003, ...) have no capacity_hours: no capacity limit",
        "  moved 0 account(s), reassigned 0, not measured: distance (no locations), workload (no workload_hours), "
        "potential (no potential)",
    ]
    # Unknowns are stored as NULL, never as 0 or NaN; today's owners keep their accounts.
    assert query(db, "SELECT status, max_workload_deviation, max_potential_deviation, total_distance_km, moved "
                     "FROM territory_plans") == [("optimal", None, None, None, 0)]
    reps = query(db, "SELECT count(*), count(home_lat), count(workload_target), count(potential_target), "
                     "count(potential_upper), count(distance_km) FROM territory_plan_reps")
    assert reps == [(8, 0, 0, 0, 0, 0)]
    owners = query(db, "SELECT account_id, owner_rep_id FROM accounts WHERE company_id = 'c1' ORDER BY 1")
    planned = query(db, "SELECT account_id, rep_id FROM territory_assignments ORDER BY 1")
    assert planned == owners


def test_a_rule_left_on_is_still_refused_alone(imported_db, capsys):
    args = ["territory", "--db", str(imported_db), "--company", "c1", "--dry-run", "--tolerance", "inf",
            "--distance-weight", "0", "--radius-km", "300"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n  - ") == 1  # the potential band follows --tolerance inf
    assert ("  - the radius needs each rep's home_lat and home_lon: missing for 8 of 8 reps (rep-0001, rep-0002, "
            "rep-0003, ...); load them with a file of company_id, rep_id, home_lat, home_lon (from Salesforce: the users' Latitude and Longitude), or drop --radius-km\n") in err


def tiny(workload=(10.0, 20.0, 30.0), potential=(1.0, 2.0, 3.0), lat=(0.0, 0.0, 1.0), capacity=(100.0, 100.0),
         home_lat=(0.0, 1.0)) -> TerritoryData:
    return TerritoryData(
        account_ids=["a1", "a2", "a3"], account_lat=list(lat), account_lon=[0.0, 0.1, 1.0], workload=list(workload),
        potential=list(potential), current_rep=["r1", "r1", "r2"], rep_ids=["r1", "r2"], rep_home_lat=list(home_lat),
        rep_home_lon=[0.0, 1.0], capacity=list(capacity), fte=[1.0, 1.0], company_id="t",
    )


def test_one_missing_workload_is_refused_with_the_account_named_and_capacity_counts_too():
    nan = math.nan
    with pytest.raises(MissingInputs) as caught:
        plan_territories(tiny(workload=(10.0, nan, 30.0)), TerritorySettings(tolerance=math.inf), FAST)
    assert caught.value.problems == [
        "capacity needs each account's workload_hours: missing for 1 of 3 accounts (a2); load them with a file of company_id, account_id, workload_hours, which later imports keep "
        "(the capacity limit only by leaving reps' capacity_hours empty)"
    ]
    # Without capacities and with the band off, nothing needs workload: the plan runs.
    plan = plan_territories(tiny(workload=(10.0, nan, 30.0), capacity=(math.inf, math.inf)),
                            TerritorySettings(tolerance=math.inf, potential_tolerance=math.inf), FAST)
    assert plan.status == "optimal" and plan.summary()["max_workload_deviation"] is None
    assert np.isnan(plan.assignments()["workload_hours"].to_numpy()).all()


def test_missing_potential_is_refused_for_the_band_and_the_moved_potential_budget():
    data = tiny(potential=(1.0, math.nan, math.nan))
    with pytest.raises(MissingInputs) as caught:
        plan_territories(data, TerritorySettings(potential_tolerance=math.inf, max_moved_potential=5.0), FAST)
    assert caught.value.problems == [
        "the moved-potential budget needs each account's potential: missing for 2 of 3 accounts (a2, a3); set it in the accounts export or the accounts' events (a CRM import has none), "
        "or drop --max-moved-potential"
    ]
    plan = plan_territories(data, TerritorySettings(tolerance=0.5, potential_tolerance=math.inf), FAST)
    assert plan.status == "optimal"
    assert plan.describe().splitlines()[1] == (
        "  moved 0 account(s), reassigned 0, mean distance 3.7 km, workload within 0.0% of target, "
        "not measured: potential (no potential)"
    )


def test_an_account_without_a_location_is_a_note_not_a_refusal():
    plan = plan_territories(tiny(lat=(0.0, math.nan, 1.0)), TerritorySettings(tolerance=0.5,
                                                                               potential_tolerance=math.inf), FAST)
    assert plan.rules.notes == ["1 of 3 accounts (a2) have no lat/lon: they add no distance"]
    assert "  note: 1 of 3 accounts (a2) have no lat/lon: they add no distance" in plan.describe().splitlines()


def test_a_negative_workload_is_still_an_error_at_once():
    with pytest.raises(InvalidArgument, match=r"workload must be >= 0 \(NaN when missing\); got -1.0"):
        tiny(workload=(10.0, -1.0, 30.0))


# ------------------------------------------------------------------------------ what-if reps

def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db")
    return add_territory_arguments(parser).parse_args(list(argv))


@pytest.fixture
def sample_db(tmp_path):
    target = tmp_path / "crm.duckdb"
    shutil.copyfile(sample_database(), target)
    return target


def test_a_rep_removed_twice_is_removed_once(sample_db):
    once = run_territory(sample_db, "c2", TerritorySettings(tolerance=0.3, potential_tolerance=math.inf), FAST,
                         remove_reps=["rep-0001", "rep-0001"], save=False)
    assert once.data.n_reps == 11 and "rep-0001" not in once.data.rep_ids.tolist()
    out = run_territory_command(parse("--db", str(sample_db), "--company", "c2", "--tolerance", "0.3",
                                      "--potential-tolerance", "inf", "--remove-rep", "rep-0001",
                                      "--remove-rep", "rep-0001", "--time-limit", "5", "--dry-run"))
    assert ", 66 accounts, 11 reps, " in out.splitlines()[0]


def test_a_new_rep_given_twice_is_refused_saying_so(sample_db):
    with pytest.raises(InvalidArgument) as caught:
        run_territory_command(parse("--db", str(sample_db), "--company", "c2", "--add-rep", "n1:50:8:1600",
                                    "--add-rep", "n1:51:9:1600", "--dry-run"))
    assert str(caught.value) == "add_rep: rep 'n1' is given twice; give each new rep once"


# ------------------------------------------------------------ reports: diagnosis, soft plan, charts

def test_a_time_limit_without_a_single_cause_is_still_diagnosed(monkeypatch):
    from crm_lab.territory import model
    from crm_lab.territory.solve import SolveOutcome

    real = model._solve

    def hard_times_out(rules, settings, options, *, relax, start):
        if not relax:
            return SolveOutcome("time_limit", "highs", "time limit", False, None, None, None, 5.0,
                                "no feasible solution found within the time limit of 5 s (infeasibility not proven)"), None
        return real(rules, settings, options, relax=relax, start=start)

    monkeypatch.setattr(model, "_solve", hard_times_out)
    plan = plan_territories(tiny(), TerritorySettings(tolerance=0.5, potential_tolerance=math.inf),
                            SolverOptions(time_limit=5))
    assert (plan.status, plan.kind) == ("time_limit", "soft")
    assert plan.diagnosis == [
        "no single rule is impossible on its own, but no plan keeping them all was found within the time limit of 5 s: "
        "a longer time limit may find one; the soft plan's violations show which rules are tightest"
    ]


def test_the_soft_plan_breaks_least_then_moves_least():
    # r2 can carry only 100 h of the 200 h its band asks: some violation is unavoidable. The
    # least is one account moved (r1 300 h, r2 100 h: each 50% off its band); a second move
    # would break r2's capacity too, although every account is far nearer r2's home.
    data = TerritoryData(
        account_ids=["a1", "a2", "a3", "a4"], account_lat=[10.0] * 4, account_lon=[0.0, 0.1, 0.2, 0.3],
        workload=[100.0] * 4, potential=[1.0] * 4, current_rep=["r1"] * 4, rep_ids=["r1", "r2"],
        rep_home_lat=[0.0, 10.0], rep_home_lon=[0.0, 0.0], capacity=[1000.0, 100.0], fte=[1.0, 1.0],
    )
    plan = plan_territories(data, TerritorySettings(tolerance=0.0, potential_tolerance=math.inf), FAST)
    assert (plan.status, plan.kind, plan.summary()["moved"]) == ("infeasible", "soft", 1)
    assert [v.text for v in plan.violations] == [
        "r1: workload 300 h is above its band's upper end 200 h by 100 h",
        "r2: workload 100 h is below its band's lower end 200 h by 100 h",
    ]


def test_the_potential_chart_has_a_grey_band_or_none_in_its_legend():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_hex

    from crm_lab.territory.charts import BAND_COLOUR, balance_bars

    data = tiny()
    for tolerance, expected in ((math.inf, []), (0.5, [BAND_COLOUR.lower()])):
        plan = plan_territories(data, TerritorySettings(tolerance=0.5, potential_tolerance=tolerance), FAST)
        legend = balance_bars(plan, "potential").axes[0].get_legend()
        colours = [to_hex(handle.get_facecolor()) for text, handle in zip(legend.get_texts(), legend.legend_handles)
                   if text.get_text() == "band"]
        assert colours == expected


def test_the_command_line_default_gap_is_the_model_default():
    from crm_lab.territory import command, model

    assert command.PLAN_GAP == model.PLAN_GAP == 0.01
    assert parse("--company", "c1").gap_rel == 0.01


# ------------------------------------------------------------------- medium models, default gap

def test_a_medium_model_is_planned_within_the_default_gap_keeping_every_rule(monkeypatch):
    import time

    from crm_lab.territory import model
    from crm_lab.territory.synthetic import random_territory
    from tests.test_territory_model import assert_keeps_every_rule

    data = random_territory(120, 12, seed=3)
    settings = TerritorySettings(tolerance=0.15, potential_tolerance=math.inf)
    assert model.MEDIUM_MODEL_PAIRS < data.n_accounts * data.n_reps <= model.IMPROVE_MAX_PAIRS
    used = []
    real = model._improve
    monkeypatch.setattr(model, "_improve", lambda *a: used.append(1) or real(*a))
    started = time.perf_counter()
    plan = plan_territories(data, settings, SolverOptions(time_limit=20, gap_rel=model.PLAN_GAP))
    assert used and time.perf_counter() - started < 20
    assert plan.kind == "hard" and plan.status in ("optimal", "feasible")
    assert plan.gap is not None and plan.gap <= model.PLAN_GAP + 1e-9
    assert_keeps_every_rule(data, settings, plan.rep_of_account)
    # The gap is honest: the plan's objective recomputed from the data, against the solver's bound.
    assert plan.objective == pytest.approx(float(plan.rules.pair_cost[np.arange(120), plan.rep_of_account].sum()))
    assert (plan.objective - plan.bound) / plan.objective == pytest.approx(plan.gap)


def test_a_time_limit_stop_names_the_limit_the_user_set(monkeypatch):
    from crm_lab.territory import model
    from crm_lab.territory.solve import SolveOutcome

    def never(rules, settings, options, eligible, relax, start):
        assert options.time_limit < 30  # what was left after the first round
        return SolveOutcome("time_limit", "highs", "time limit", False, None, None, None, options.time_limit,
                            f"no feasible solution found within the time limit of {options.time_limit:g} s "
                            "(infeasibility not proven)"), None

    monkeypatch.setattr(model, "_improve", lambda *a: (time.sleep(0.05), (None, None))[1])
    monkeypatch.setattr(model, "_solve_once", never)
    from crm_lab.territory.synthetic import random_territory

    data = random_territory(120, 12, seed=3)
    outcome, plan = model._solve(model.derive_rules(data, TerritorySettings()), TerritorySettings(),
                                 SolverOptions(time_limit=30), relax=frozenset(), start=None)
    assert plan is None and outcome.status == "time_limit"
    assert outcome.message == "no feasible solution found within the time limit of 30 s (infeasibility not proven)"


def test_with_no_band_and_no_distance_the_plan_says_nothing_decides_where_unowned_accounts_go():
    import dataclasses

    from crm_lab.territory.inputs import check_inputs
    from crm_lab.territory.synthetic import random_territory

    owned = random_territory(30, 4, seed=1)
    current = owned.current_rep.copy()
    current[:6] = None
    data = dataclasses.replace(owned, current_rep=current)
    note = ("no band and no distance: nothing decides which reps get the 6 account(s) without a current rep in the "
            "plan, so the solver puts them anywhere (often all on one rep); switch on a band or distance to share "
            "them out")
    off = TerritorySettings(tolerance=math.inf, potential_tolerance=math.inf, distance_weight=0)
    assert note in check_inputs(data, off)
    assert f"  note: {note}" in plan_territories(data, off, SolverOptions(time_limit=5)).describe().splitlines()
    assert note not in check_inputs(data, dataclasses.replace(off, tolerance=0.3))  # a band shares them out
    assert note not in check_inputs(owned, off)  # every account has a rep of the plan
