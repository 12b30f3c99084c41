"""A notebook's workbench explains a public name that is missing as `crm-lab sql` does, and
leaves every other DuckDB error as it was."""

from __future__ import annotations

import duckdb
import pytest

from crm_lab.errors import CrmLabError
from crm_lab.workbench import open_workbench, sample_database


def test_a_public_name_no_command_has_made_yet_names_its_command():
    with open_workbench(None) as wb:
        assert not wb.con.sql("SELECT 1 FROM duckdb_tables() WHERE table_name = 'lead_sweeps'").fetchall()
        with pytest.raises(CrmLabError) as missing:
            wb.query("SELECT * FROM lead_sweeps")
    assert str(missing.value).startswith(f"lead_sweeps is made by `crm-lab sweep-leads`, which has not run on {sample_database()}")


def test_a_company_session_says_a_table_spans_companies():
    with open_workbench(None, company="c1") as wb, pytest.raises(CrmLabError) as scoped:
        wb.query("SELECT count(*) FROM load_runs")
    assert str(scoped.value) == ("load_runs spans all companies, so it is not available in a session for company c1: "
                                 "query it without --company (in Python: open_workbench without company)")


def test_other_errors_stay_duckdbs_own():
    with open_workbench(None) as wb, pytest.raises(duckdb.BinderException) as error:
        wb.query("SELECT no_such_column FROM deals")
    assert "no_such_column" in str(error.value)
