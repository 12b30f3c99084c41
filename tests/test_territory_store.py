"""Territory plans from the workbench database and back: inputs read from replayed tables, plans
written in one transaction with a run record, every row carrying plan_id and company_id, and the
``crm-lab territory`` options."""

from __future__ import annotations

import argparse
import json
import math
import shutil

import duckdb
import numpy as np
import pytest

from crm_lab.db import reading
from crm_lab.errors import InvalidArgument
from crm_lab.runs import RUN_COLUMNS_SQL, input_fingerprint
from crm_lab.schema import table_spec
from crm_lab.territory import NewRep, SolverOptions, TerritorySettings, read_territory_data, run_territory
from crm_lab.territory.command import add_territory_arguments, run_territory_command
from crm_lab.territory.store import TERRITORY_TABLES
from crm_lab.workbench import sample_database
from tests.conftest import query

FAST = SolverOptions(time_limit=5, gap_rel=0.02)
WORKLOAD_ONLY = TerritorySettings(tolerance=0.2, potential_tolerance=math.inf)


@pytest.fixture
def sample_db(tmp_path):
    target = tmp_path / "crm.duckdb"
    shutil.copyfile(sample_database(), target)
    return target


def test_inputs_are_the_live_accounts_and_active_account_executives(sample_db):
    with reading(sample_db) as con:
        data = read_territory_data(con, "c2")
        accounts = con.sql("SELECT count(*) FROM accounts_current WHERE company_id = 'c2'").fetchall()[0][0]
        aes = con.sql("SELECT count(*) FROM reps WHERE company_id = 'c2' AND role = 'AE' AND is_active").fetchall()[0][0]
    assert (data.n_accounts, data.n_reps) == (accounts, aes)
    assert data.company_id == "c2"
    assert set(data.current_rep.tolist()) <= set(data.rep_ids.tolist()) | {None}
    assert np.isfinite(data.rep_centre_lat).all()


def test_a_plan_is_stored_with_its_run_record_and_every_row_carries_plan_and_company(sample_db):
    plan = run_territory(sample_db, "c2", WORKLOAD_ONLY, FAST)
    assert plan.plan_id.startswith("territory-")
    [(plan_id, company, status, kind, parameters, fingerprint, seed)] = query(
        sample_db, "SELECT plan_id, company_id, status, plan_kind, parameters, input_fingerprint, seed FROM territory_plans"
    )
    assert (plan_id, company, status, kind, seed) == (plan.plan_id, "c2", plan.status, "hard", 0)
    assert status in ("optimal", "feasible")
    assert json.loads(parameters)["settings"]["tolerance"] == 0.2
    with reading(sample_db) as con:
        assert fingerprint == input_fingerprint(con)
    for table in TERRITORY_TABLES:
        assert query(sample_db, f"SELECT DISTINCT plan_id, company_id FROM {table}") == [(plan.plan_id, "c2")]
    assert query(sample_db, "SELECT count(*) FROM territory_assignments") == [(plan.data.n_accounts,)]
    assert query(sample_db, "SELECT count(*) FROM territory_plan_reps") == [(plan.data.n_reps,)]
    # The stored loads are the plan's, and within the band.
    rows = query(sample_db, "SELECT workload_hours, workload_lower, workload_upper FROM territory_plan_reps")
    assert all(lower - 1e-6 <= hours <= upper + 1e-6 for hours, lower, upper in rows)
    assert query(sample_db, "SELECT sum(CASE WHEN moved THEN 1 ELSE 0 END) FROM territory_assignments") == [
        (plan.summary()["moved"],)
    ]


def test_the_plan_record_starts_with_the_common_run_columns_and_tables_state_their_keys():
    con = duckdb.connect()
    con.execute(f"CREATE TABLE run_head ({RUN_COLUMNS_SQL})")
    head = con.sql("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'run_head' "
                   "ORDER BY column_index").fetchall()
    spec = table_spec("territory_plans")
    plans = [(c.name, c.sql_type) for c in spec.columns[: len(head)]]
    assert plans == [("plan_id" if name == "run_id" else name, sql_type) for name, sql_type in head]
    assert spec.key == ("plan_id",)
    assert table_spec("territory_assignments").key == ("plan_id", "account_id")
    assert table_spec("territory_plan_reps").key == ("plan_id", "rep_id")
    for table in ("territory_assignments", "territory_plan_reps"):
        assert table_spec(table).column("company_id").required


def test_an_impossible_plan_stores_its_diagnosis_and_the_soft_plans_violations(sample_db):
    plan = run_territory(sample_db, "c1", TerritorySettings(tolerance=0.1, potential_tolerance=0.1),
                         SolverOptions(time_limit=2, gap_rel=0.02))
    assert plan.status == "infeasible" and plan.kind == "soft"
    [(status, kind, diagnosis, violations)] = query(
        sample_db, "SELECT status, plan_kind, diagnosis, violations FROM territory_plans"
    )
    assert (status, kind) == ("infeasible", "soft")
    assert any("alone has potential" in reason for reason in json.loads(diagnosis))
    stored = json.loads(violations)
    assert [v["text"] for v in stored] == [v.text for v in plan.violations]
    assert {"kind", "subject", "limit", "value", "excess"} <= set(stored[0])


def test_what_ifs_add_and_remove_reps_before_planning(sample_db):
    with reading(sample_db) as con:
        data = read_territory_data(con, "c2")
    removed = data.rep_ids[0]
    plan = run_territory(sample_db, "c2", WORKLOAD_ONLY, FAST, add_reps=[NewRep("new-1", 48.1, 11.6, 1600)],
                         remove_reps=[removed])
    reps = dict(query(sample_db, "SELECT rep_id, is_new FROM territory_plan_reps"))
    assert reps["new-1"] is True and removed not in reps
    reassigned = query(sample_db, "SELECT DISTINCT previous_rep_id FROM territory_assignments WHERE reassigned")
    assert reassigned == [(removed,)]
    assert json.loads(query(sample_db, "SELECT parameters FROM territory_plans")[0][0])["remove_reps"] == [removed]
    assert plan.data.n_reps == data.n_reps


def test_unknown_company_and_bad_ids_are_refused_by_name(sample_db):
    with pytest.raises(InvalidArgument, match="company: no accounts for 'zz'; companies: c1, c2"):
        run_territory(sample_db, "zz", save=False)
    with pytest.raises(InvalidArgument, match="locks: unknown rep 'rep-9999'"):
        run_territory(sample_db, "c1", TerritorySettings(locks=[("acct-00001", "rep-9999")]), save=False)
    with pytest.raises(InvalidArgument, match="remove_rep: unknown rep 'ghost'"):
        run_territory(sample_db, "c1", remove_reps=["ghost"], save=False)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="crm-lab territory")
    parser.add_argument("--db")
    add_territory_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_command_plans_prints_and_writes(sample_db):
    out = run_territory_command(parse(
        "--db", str(sample_db), "--company", "c2", "--tolerance", "0.2", "--potential-tolerance", "inf",
        "--max-moves", "30", "--lock", "acct-00001:rep-0002", "--time-limit", "5", "--gap-rel", "0.02",
    ))
    assert out.startswith("territory plan territory-") and " for c2: " in out
    assert "rows: SELECT * FROM territory_assignments WHERE plan_id = " in out
    [(plan_id, parameters)] = query(sample_db, "SELECT plan_id, parameters FROM territory_plans")
    settings = json.loads(parameters)["settings"]
    assert settings["max_moves"] == 30 and settings["locks"] == [["acct-00001", "rep-0002"]]
    assert query(sample_db, "SELECT rep_id FROM territory_assignments WHERE account_id = 'acct-00001'") == [("rep-0002",)]
    assert query(sample_db, "SELECT count(*) <= 30 FROM territory_assignments WHERE moved") == [(True,)]


def test_a_dry_run_writes_nothing(sample_db):
    out = run_territory_command(parse("--db", str(sample_db), "--company", "c2", "--potential-tolerance", "inf",
                                      "--tolerance", "0.3", "--time-limit", "3", "--gap-rel", "0.05", "--dry-run"))
    assert out.endswith("dry run: nothing written")
    assert query(sample_db, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'territory%'") == [(0,)]


def test_command_line_values_are_checked_with_the_option_named(sample_db):
    with pytest.raises(InvalidArgument, match="lock must be ACCOUNT_ID:REP_ID; got 'acct-00001'"):
        run_territory_command(parse("--db", str(sample_db), "--company", "c1", "--lock", "acct-00001"))
    with pytest.raises(InvalidArgument, match="add_rep must be ID:LAT:LON:CAPACITY"):
        run_territory_command(parse("--db", str(sample_db), "--company", "c1", "--add-rep", "x:1:2"))
    with pytest.raises(InvalidArgument, match=r"tolerance must be a number >= 0 or inf \(workload unbalanced\); got -1.0"):
        run_territory_command(parse("--db", str(sample_db), "--company", "c1", "--tolerance", "-1"))


def test_declaring_the_command_loads_no_solver_and_its_choices_match_the_package():
    import subprocess
    import sys

    from crm_lab.territory import command, solve, store

    assert command.SOLVER_CHOICES == solve.SOLVERS
    assert command.DEFAULT_ROLES == store.DEFAULT_ROLES
    probe = "import sys; from crm_lab.territory.command import add_territory_arguments; print('pulp' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"
