"""`crm-lab dashboard` and `crm-lab lab` up to the server: parameters filled the way papermill
fills them, refused with a clear message when wrong, and servers told to stay on 127.0.0.1 and
call nowhere. (tests/browser drives the running servers in Chromium.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.serve import (
    JUPYTER_DATA,
    WHAT_IF_NOTEBOOK,
    dashboard_command,
    dashboard_parameters,
    lab_command,
    lab_environment,
    check_company,
    offline_environment,
    parameterized_copy,
    parse_assignments,
)


def test_assignments_are_read_as_yaml_and_dates_stay_text():
    assert parse_assignments(["trials=500", "company=c2", "as_of=2025-07-01", "capacity_hours=90.5", "target=null"]) == {
        "trials": 500, "company": "c2", "as_of": "2025-07-01", "capacity_hours": 90.5, "target": None,
    }
    assert parse_assignments(["as_of=2025-07-01 12:30:00"]) == {"as_of": "2025-07-01T12:30:00"}


@pytest.mark.parametrize("bad, message", [
    ("trials", "-p 'trials': expected NAME=VALUE, e.g. -p trials=500"),
    ("2x=1", "-p '2x=1': expected NAME=VALUE"),
    ("company=[c1", "-p 'company=[c1': the value is not valid YAML"),
])
def test_bad_assignments_are_refused_by_name(bad, message):
    with pytest.raises(InvalidArgument, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_assignments([bad])


def test_the_served_copy_carries_papermills_injected_parameters(tmp_path):
    served = parameterized_copy(WHAT_IF_NOTEBOOK, {"trials": 500, "company": "c2"}, tmp_path)
    cells = nbformat.read(served, as_version=4).cells
    injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "trials = 500" in injected[0].source and 'company = "c2"' in injected[0].source
    original = nbformat.read(WHAT_IF_NOTEBOOK, as_version=4).cells
    assert len(cells) == len(original) + 1


@pytest.mark.parametrize("parameters, message", [
    ({"trails": 500}, "^parameter 'trails' is not in .*06_what_if.ipynb's parameters cell"),
    ({"trials": "many"}, "^parameter 'trials' should be int like the notebook's default 2000"),
])
def test_parameters_the_notebook_does_not_declare_are_refused(tmp_path, parameters, message):
    with pytest.raises(InvalidArgument, match=message):
        parameterized_copy(WHAT_IF_NOTEBOOK, parameters, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_notebook_or_database_is_named(tmp_path):
    with pytest.raises(InvalidArgument, match="notebook .*nowhere.ipynb does not exist"):
        parameterized_copy(tmp_path / "nowhere.ipynb", {}, tmp_path)
    with pytest.raises(InvalidArgument, match="database .*missing.duckdb does not exist: build it with `make demo`"):
        dashboard_parameters(tmp_path / "missing.duckdb", None, {})


def test_dashboard_parameters_make_the_database_absolute(tmp_path, monkeypatch):
    (tmp_path / "crm.duckdb").touch()
    monkeypatch.chdir(tmp_path)
    assert dashboard_parameters("crm.duckdb", "c1", {"trials": 9}) == {
        "trials": 9, "db_path": str(tmp_path / "crm.duckdb"), "company": "c1"}
    assert dashboard_parameters(None, None, {}) == {}


def test_servers_listen_on_loopback_and_call_nowhere(tmp_path):
    lab = lab_command(tmp_path, port=9001, open_browser=False)
    for flag in ("--ServerApp.ip=127.0.0.1", "--ServerApp.port=9001", "--ServerApp.port_retries=0",
                 "--ServerApp.open_browser=False", "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", f"--notebook-dir={tmp_path}"):
        assert flag in lab
    voila = dashboard_command(tmp_path / "n.ipynb", port=9002, open_browser=False)
    for flag in ("--Voila.ip=127.0.0.1", "--port=9002", "--Voila.port_retries=0", "--no-browser", "--template=crm_lab"):
        assert flag in voila
    assert "--KernelManager.transport=ipc" in lab and "--KernelManager.transport=ipc" in voila  # no kernel port
    env = offline_environment()
    assert env["PLOOMBER_STATS_ENABLED"] == "false" and env["PLOOMBER_VERSION_CHECK_DISABLED"] == "1"
    assert env["JUPYTER_PATH"].split(":")[0] == str(JUPYTER_DATA)
    assert (JUPYTER_DATA / "voila" / "templates" / "crm_lab" / "index.html.j2").is_file()


def test_the_cli_refuses_a_missing_database_before_starting_anything(tmp_path):
    done = subprocess.run([sys.executable, "-m", "crm_lab", "dashboard", "--db", str(tmp_path / "none.duckdb"),
                           "--no-browser"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "crm-lab dashboard: database" in done.stderr and "does not exist" in done.stderr
    done = subprocess.run([sys.executable, "-m", "crm_lab", "dashboard", "--sample", "-p", "trails=5", "--no-browser"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "parameter 'trails' is not in" in done.stderr
    done = subprocess.run([sys.executable, "-m", "crm_lab", "lab", "--notebook-dir", str(tmp_path / "no-such"),
                           "--no-browser"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "notebook folder" in done.stderr and "does not exist" in done.stderr


def test_lab_points_notebooks_without_a_db_path_at_its_database(tmp_path, monkeypatch):
    from crm_lab.workbench import default_database, sample_database

    monkeypatch.setenv("CRM_LAB_DB", "/somewhere/else.duckdb")
    assert "CRM_LAB_DB" not in lab_environment(tmp_path / "missing.duckdb")  # then the sample
    (tmp_path / "crm.duckdb").touch()
    monkeypatch.chdir(tmp_path)
    assert lab_environment("crm.duckdb")["CRM_LAB_DB"] == str(tmp_path / "crm.duckdb")
    assert default_database() == Path("/somewhere/else.duckdb")
    monkeypatch.delenv("CRM_LAB_DB")
    assert default_database() == sample_database()


DECLARED = ("db_path, company, as_of, horizon, trials, seed, test_days, capacity_hours, hours_per_lead, cost_per_lead, "
            "replicates, time_limit")


def test_the_cli_says_crm_lab_dashboard_once_before_a_parameter_error():
    done = subprocess.run([sys.executable, "-m", "crm_lab", "dashboard", "--sample", "-p", "trails=5", "--no-browser"],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"crm-lab dashboard: parameter 'trails' is not in {WHAT_IF_NOTEBOOK}'s parameters cell "
                           f"(it declares: {DECLARED})\n")


def test_an_unknown_company_is_refused_before_the_server_starts(tmp_path):
    from crm_lab.workbench import sample_database
    from tests.conftest import query

    db = tmp_path / "crm.duckdb"
    db.write_bytes(sample_database().read_bytes())
    known = ", ".join(c for (c,) in query(db, "SELECT company_id FROM companies UNION SELECT company_id FROM events ORDER BY 1"))
    for option in (["--company", "zz"], ["-p", "company=zz"]):
        done = subprocess.run([sys.executable, "-m", "crm_lab", "dashboard", "--db", str(db), *option, "--no-browser",
                               "--port", "1"], capture_output=True, text=True, timeout=120)
        # Refused before the server starts: no "serving ..." line, no server output, status 2.
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr == f"crm-lab dashboard: company 'zz' is not in {db}: known companies are {known}\n"
    with pytest.raises(InvalidArgument) as refused:
        check_company({"db_path": str(db), "company": 7})
    assert str(refused.value) == "company must be a company id (text), got int 7"
    check_company({"db_path": str(db), "company": "c1"})  # a known company passes
    check_company({})  # no company: the notebook takes the first
