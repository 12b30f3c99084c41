"""`crm-lab dashboard` and `crm-lab lab` up to the server: parameters filled the way papermill
fills them, refused with a clear message when wrong, and servers told to stay on 127.0.0.1 and
call nowhere. (tests/browser drives the running servers in Chromium.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
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
    check_dashboard_inputs,
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


# ------------------------------------------------------------------- as_of and horizon before the start


def event_log_span(db, company: str) -> tuple[str, str]:
    from tests.conftest import query

    first, last = query(db, "SELECT min(occurred_at AT TIME ZONE 'UTC')::DATE, max(occurred_at AT TIME ZONE 'UTC')::DATE FROM events WHERE company_id = ?", [company])[0]
    return str(first), str(last)


@pytest.mark.parametrize("option, message", [
    # No --company: the page shows the first company, so its log is the one checked.
    ("as_of=2031-01-01", "company c1: as_of 2031-01-01: after the data ends (the event log spans {first} to {last}); "
                         "forecast as of at most 7 days after {last}, or load and replay newer events"),
    ("horizon=decade", "horizon must be one of month, quarter, year or a date like '2025-06-30', got 'decade'"),
    ("as_of=notadate", "as_of must be a date or timestamp like '2025-03-31' or '2025-03-31 23:59:59', got 'notadate'"),
])
def test_an_as_of_or_horizon_the_forecast_refuses_is_refused_before_the_server_starts(option, message):
    from crm_lab.workbench import sample_database

    first, last = event_log_span(sample_database(), "c1")
    done = subprocess.run([sys.executable, "-m", "crm_lab", "dashboard", "--sample", "-p", option, "--no-browser",
                           "--port", "1"], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr == f"crm-lab dashboard: {message.format(first=first, last=last)}\n"


def test_dashboard_inputs_are_checked_with_the_forecasts_own_checks():
    from crm_lab.workbench import sample_database

    db = str(sample_database())
    first, last = event_log_span(db, "c2")
    with pytest.raises(InvalidArgument) as refused:
        check_dashboard_inputs({"db_path": db, "company": "c2", "as_of": "2031-01-01", "horizon": "year"})
    assert str(refused.value).startswith(f"company c2: as_of 2031-01-01: after the data ends (the event log spans {first} to {last})")
    with pytest.raises(InvalidArgument, match="^horizon must be one of month, quarter, year"):
        check_dashboard_inputs({"db_path": db, "horizon": "decade"})  # checked at the default as_of too
    check_dashboard_inputs({"db_path": db, "company": "c1", "as_of": "2025-07-01", "horizon": "month"})
    check_dashboard_inputs({"db_path": db, "horizon": "year"})


def test_a_crm_lab_error_in_a_notebook_cell_shows_as_its_message(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    from crm_lab.widgets import shows_errors

    shell = InteractiveShell.instance()
    shown = []
    shell.display_pub.publish = lambda data, **_: shown.append(data)
    with shows_errors():
        raise InvalidArgument("as_of 2031-01-01: after the data ends <soon>")
    assert shown == [{"text/html": '<p class="crm-lab-cell-error"><span class="crm-lab-error" style="color:#b00020">'
                                   "as_of 2031-01-01: after the data ends &lt;soon&gt;</span></p>",
                      "text/plain": "<IPython.core.display.HTML object>"}]
    with pytest.raises(ZeroDivisionError):  # a bug still fails the cell, with its traceback
        with shows_errors():
            1 / 0


# ------------------------------------------------------------------------- SIGTERM and SIGHUP


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_sigterm_stops_the_dashboard_its_kernels_and_removes_its_folder():
    from tests.browser.conftest import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "crm_lab", "dashboard", "--sample", "--no-browser", "--port",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: answers(port) or process.poll() is not None, 60, "the dashboard to answer")
        assert process.poll() is None
        (voila,) = children(process.pid)
        command = Path(f"/proc/{voila}/cmdline").read_bytes().split(b"\0")
        scratch = Path(command[3].decode()).parent
        assert scratch.name.startswith("crm-lab-dashboard-") and scratch.is_dir()
        wait_until(lambda: children(voila), 30, "a kernel")
        kernels = children(voila)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 128 + signal.SIGTERM
        assert not alive(voila) and not any(alive(k) for k in kernels)
        assert not scratch.exists() and not answers(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


RUN_SERVER = """
import sys, tempfile
from pathlib import Path
from crm_lab.serve import run_server
with tempfile.TemporaryDirectory(prefix="crm-lab-test-") as scratch:
    print(scratch, flush=True)
    code = run_server([sys.executable, "-c", sys.argv[1]], cwd=Path(scratch), grace=1.0)
sys.exit(code)
"""


@pytest.mark.parametrize("signum, server", [
    (signal.SIGHUP, "import time; print('up', flush=True); time.sleep(60)"),
    # A server that ignores SIGTERM is killed, with its process group, after the grace period.
    (signal.SIGTERM, "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
                     "time.sleep(60)"),
])
def test_a_stop_signal_stops_the_server_and_runs_the_callers_cleanup(signum, server):
    process = subprocess.Popen([sys.executable, "-c", RUN_SERVER, server], stdout=subprocess.PIPE, text=True)
    try:
        scratch = Path(process.stdout.readline().strip())
        assert process.stdout.readline() == "up\n"
        (child,) = children(process.pid)
        process.send_signal(signum)
        assert process.wait(timeout=15) == 128 + signum
        assert not alive(child) and not scratch.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ctrl_c_stops_the_server_after_polars_is_imported():
    """Importing polars registers SIGINT with SA_RESTART: the wait for the server then resumed
    after Ctrl-C and the interrupt waited for the server to exit by itself (here, 60 s)."""
    script = "import polars\n" + RUN_SERVER
    process = subprocess.Popen([sys.executable, "-c", script, "import time; print('up', flush=True); time.sleep(60)"],
                               stdout=subprocess.PIPE, text=True)
    try:
        scratch = Path(process.stdout.readline().strip())
        assert process.stdout.readline() == "up\n"
        (child,) = children(process.pid)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        assert not alive(child) and not scratch.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
