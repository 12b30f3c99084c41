"""Batch reports end to end: spec validation before any kernel starts, parallel runs with failure
isolation, self-contained HTML, the ledger, retries, a busy database, a Dask cluster giving
the same results as the local pool, and the results of notebooks 03, 04 and 05 stored under
their report runs (the session's report batch, tests/conftest.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crm_lab.batch import run_batch
from crm_lab.batch.spec import SpecError, load_spec
from crm_lab.workbench import sample_database
from tests.conftest import REPORT_RUNS, executed_notebook, query

ROOT = Path(__file__).resolve().parents[1]
TINY = "tests/notebooks/tiny_report.ipynb"
INJECTION = "c1' OR '1'='1'; DROP TABLE deals; --"


@pytest.fixture
def db(tmp_path) -> Path:
    target = tmp_path / "crm.duckdb"
    shutil.copy(sample_database(), target)
    return target


def write_spec(folder: Path, runs: list[dict], **extra) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "test", "output": str(folder / "reports"), "timeout": 120,
                                    "runs": runs, **extra}), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # notebook paths in specs are relative to the working directory


def test_matrix_expands_into_named_runs_with_shared_parameters(tmp_path):
    spec = load_spec(write_spec(tmp_path, [
        {"name": "tiny-{company}-{weeks}", "notebook": TINY, "matrix": {"company": ["c1", "c2"], "weeks": [2, 8]}},
    ], parameters={"weeks": 4, "not_declared_here": 1}))
    assert [(r.name, r.parameters) for r in spec.runs] == [
        ("tiny-c1-2", {"company": "c1", "weeks": 2}), ("tiny-c1-8", {"company": "c1", "weeks": 8}),
        ("tiny-c2-2", {"company": "c2", "weeks": 2}), ("tiny-c2-8", {"company": "c2", "weeks": 8}),
    ]


@pytest.mark.parametrize(("runs", "message"), [
    ([{"name": "a", "notebook": TINY, "parameters": {"wekks": 3}}],
     "run 'a': parameter 'wekks' is not in tests/notebooks/tiny_report.ipynb's parameters cell (it declares: db_path, company, weeks)"),
    ([{"name": "a", "notebook": TINY, "parameters": {"weeks": "four"}}],
     "run 'a': parameter 'weeks' should be int like the notebook's default 4, got str 'four'"),
    ([{"name": "a", "notebook": "notebooks/99_missing.ipynb"}], "run 'a': notebook notebooks/99_missing.ipynb does not exist"),
    ([{"name": "a", "notebook": TINY}, {"name": "a", "notebook": TINY}], "run name 'a' appears more than once"),
    ([{"name": "t-{region}", "notebook": TINY, "matrix": {"company": ["c1"]}}],
     "the name uses a placeholder 'region' that is not a matrix key"),
    ([{"name": "a", "notebook": TINY, "schedule": "daily"}], "unknown key(s) schedule"),
    ([{"name": "a", "notebook": "notebooks/02_replay.ipynb", "parameters": {"as_of": "31/03/2025"}}],
     "run 'a': as_of must be a date or timestamp like '2025-03-31' or '2025-03-31 23:59:59', got '31/03/2025'"),
    ([{"name": "a", "notebook": "notebooks/02_replay.ipynb", "parameters": {"t1": "2025-13-01"}}],
     "run 'a': t1 must be a date or timestamp like '2025-03-31' or '2025-03-31 23:59:59', got '2025-13-01'"),
    ([{"name": "a", "notebook": "notebooks/05_territory.ipynb", "parameters": {"results_dir": "/tmp/mine"}}],
     "run 'a': results_dir is set by the batch (a folder per run and batch, whose results it stores with the run); "
     "leave it out of the spec"),
])
def test_a_bad_spec_is_refused_before_any_kernel_starts(tmp_path, db, runs, message):
    spec = write_spec(tmp_path, runs)
    with pytest.raises(SpecError) as refused:
        run_batch(spec, db)
    assert message in str(refused.value)
    assert not (tmp_path / "reports").exists(), "nothing ran, nothing was written"


def test_notebook_paths_are_found_from_any_working_directory(tmp_path, monkeypatch):
    """`crm-lab batch ../proj/pipelines/weekly.yaml` from elsewhere: a relative notebook path is
    looked for in the working directory, then the spec's folder, then its parent (the project)."""
    project = tmp_path / "proj"
    (project / "pipelines").mkdir(parents=True)
    (project / "notebooks").mkdir()
    shutil.copy(ROOT / TINY, project / "notebooks" / "tiny.ipynb")
    shutil.copy(ROOT / TINY, project / "pipelines" / "beside.ipynb")
    (project / "pipelines" / "weekly.yaml").write_text(yaml.safe_dump({"runs": [
        {"name": "in-project", "notebook": "notebooks/tiny.ipynb"}, {"name": "beside", "notebook": "beside.ipynb"}]}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_spec(Path("../proj/pipelines/weekly.yaml"))
    assert [(r.name, r.notebook.resolve()) for r in spec.runs] == [
        ("in-project", project / "notebooks" / "tiny.ipynb"), ("beside", project / "pipelines" / "beside.ipynb")]
    (project / "pipelines" / "weekly.yaml").write_text(yaml.safe_dump({"runs": [{"name": "a", "notebook": "notebooks/nope.ipynb"}]}))
    with pytest.raises(SpecError) as refused:
        load_spec(Path("../proj/pipelines/weekly.yaml"))
    assert str(refused.value) == (
        f"../proj/pipelines/weekly.yaml: run 'a': notebook notebooks/nope.ipynb does not exist (a relative path is looked "
        f"for in the working directory {elsewhere}, then in the spec's folder {project / 'pipelines'} and its parent)")


def test_runs_a_killed_batch_left_running_count_as_interrupted():
    from crm_lab.batch.run import _settled

    previous = {"batch_id": "batch-1", "runs": [{"name": "a", "status": "ok", "error": None},
                                                 {"name": "b", "status": "running", "error": None}]}
    assert [(r["name"], r["status"], r["error"]) for r in _settled(previous)["runs"]] == [
        ("a", "ok", None),
        ("b", "interrupted", "its batch batch-1 ended before this run did (the batch process was killed)")]


def test_a_failing_run_keeps_its_evidence_and_does_not_stop_the_others(tmp_path, db):
    spec = write_spec(tmp_path, [
        {"name": "tiny-{company}", "notebook": TINY, "matrix": {"company": ["c1", "c2"]}},
        # A bad value, and an injection attempt through the pipeline YAML: refused as an unknown company.
        {"name": "broken", "notebook": TINY, "parameters": {"company": INJECTION}},
    ])
    done = subprocess.run([sys.executable, "-m", "crm_lab", "batch", str(spec), "--db", str(db), "--jobs", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    # Kernels run over Unix sockets: ipykernel's warning about unencrypted TCP never shows.
    assert "TCP without encryption" not in done.stdout + done.stderr
    assert "KeyboardInterrupt" not in done.stdout + done.stderr  # no interrupt at kernel shutdown
    assert "3 run(s), 1 failed" in done.stdout and "failed: broken (rerun them alone with --retry-failed)" in done.stdout
    reports = tmp_path / "reports"
    ledger = query(db, "SELECT run_name, status, error, company_id FROM report_runs ORDER BY run_name")
    assert [(name, status, company) for name, status, _, company in ledger] == [
        ("broken", "failed", INJECTION), ("tiny-c1", "ok", "c1"), ("tiny-c2", "ok", "c2")]
    assert ledger[0][2].startswith(f"InvalidArgument: company {INJECTION!r} is not in ")
    assert query(db, "SELECT count(*) > 0 FROM deals") == [(True,)], "the payload reached no SQL"
    # The failed notebook is kept, with papermill's error banner, and so is its HTML.
    failed_nb = (reports / "broken" / "broken.ipynb").read_text(encoding="utf-8")
    assert "An Exception was encountered at" in failed_nb
    assert (reports / "broken" / "broken.html").exists()
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert "test: 3 run(s), 1 failed" in index and 'href="tiny-c1/tiny-c1.html"' in index

    # --retry-failed reruns the failed run alone.
    first_batch = json.loads((reports / "batch.json").read_text())["batch_id"]
    retried = run_batch(spec, db, retry_failed=True)
    assert [r["name"] for r in retried.runs if r["batch_id"] != first_batch] == ["broken"]
    assert sorted(r["name"] for r in retried.runs) == ["broken", "tiny-c1", "tiny-c2"]
    assert query(db, "SELECT count(*) FROM report_runs WHERE run_name = 'broken'") == [(2,)]
    assert query(db, "SELECT count(*) FROM report_runs WHERE run_name = 'tiny-c1'") == [(1,)]


@pytest.fixture(scope="module")
def tiny_batch(tmp_path_factory):
    """One batch of the tiny report on a copy of the sample, shared by the tests that only read
    what it wrote (its HTML, its ledger, its output folder): (folder, db, result)."""
    folder = tmp_path_factory.mktemp("tiny_batch")
    db = folder / "crm.duckdb"
    shutil.copy(sample_database(), db)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        result = run_batch(write_spec(folder, [{"name": "tiny", "notebook": TINY}]), db, jobs=1)
    return folder, db, result


def test_reports_are_self_contained_html_with_embedded_charts(tiny_batch):
    folder, db, result = tiny_batch
    html = Path(result.runs[0]["output_html"]).read_text(encoding="utf-8")
    assert html.count("<img alt=\"No description has been provided for this image\" class=\"\" src=\"data:image/png;base64,") == 1
    assert not re.findall(r"(?:src|href)=\"https?://", html), "a report must not load anything from the network"
    assert "from crm_lab" not in html, "code cells are hidden in reports"
    ledger = query(db, "SELECT status, input_fingerprint, crm_lab_version FROM report_runs")
    assert ledger[0][0] == "ok" and len(ledger[0][1]) == 64
    # Written under temporary names, then moved into place: none is left, the notebook names its place.
    notebook = Path(result.runs[0]["output_notebook"])
    assert sorted(p.name for p in notebook.parent.iterdir() if p.is_file()) == ["tiny.html", "tiny.ipynb"]
    assert json.loads(notebook.read_text())["metadata"]["papermill"]["output_path"] == str(notebook)
    assert json.loads((folder / "reports" / "batch.json").read_text())["finished_at"]


def test_an_analysts_open_session_never_makes_a_run_lose_its_results(tmp_path, db):
    """An analyst keeps a read-only session open all along: the notebooks still run (readers share
    the file), the ledger writer waits its bounded time, then keeps the ledger on disk with a
    clear message; `crm-lab batch --ingest` writes it once the session is closed."""
    analyst = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
                                "print('reading', flush=True); time.sleep(120)", str(db)], stdout=subprocess.PIPE, text=True)
    spec = write_spec(tmp_path, [{"name": "tiny", "notebook": TINY}])
    try:
        assert analyst.stdout.readline().strip() == "reading"
        result = run_batch(spec, db, lock_timeout=1)
    finally:
        analyst.kill()
        analyst.wait()
    reports = tmp_path / "reports"
    assert [r["status"] for r in result.runs] == ["ok"]
    assert result.ledger_note.startswith(f"ledger not written (database {db} is locked by process {analyst.pid}")
    assert result.ledger_note.endswith(f"results kept in {reports}, ingested by the next batch or `crm-lab batch --ingest {reports}`")
    assert (reports / "ledger.pending.json").exists()
    done = subprocess.run([sys.executable, "-m", "crm_lab", "batch", "--ingest", str(reports), "--db", str(db)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "ledger: 1 run(s) recorded in report_runs"
    assert not (reports / "ledger.pending.json").exists()
    assert query(db, "SELECT run_name, status FROM report_runs") == [("tiny", "ok")]


def test_a_dask_cluster_gives_the_same_ledger_and_results_as_the_local_pool(tmp_path, db):
    distributed = pytest.importorskip("distributed")
    runs = [{"name": "tiny-{company}", "notebook": TINY, "matrix": {"company": ["c1", "c2"]}}]
    for folder in ("local", "dask"):
        (tmp_path / folder).mkdir()
    local = run_batch(write_spec(tmp_path / "local", runs), db, jobs=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = run_batch(write_spec(tmp_path / "dask", runs), db, scheduler=cluster.scheduler_address)

    def outputs(result):
        shown = {}
        for run in result.runs:
            nb = json.loads(Path(run["output_notebook"]).read_text())
            shown[run["name"]] = [o.get("text") for c in nb["cells"] for o in c.get("outputs", []) if o.get("name") == "stdout"]
        return shown

    assert [(r["name"], r["status"], r["parameters"]["company"]) for r in local.runs] == \
           [(r["name"], r["status"], r["parameters"]["company"]) for r in remote.runs]
    assert outputs(local) == outputs(remote)
    assert query(db, "SELECT count(*), count(DISTINCT batch_id) FROM report_runs WHERE status = 'ok'") == [(4, 2)]


def test_a_run_that_overstays_its_timeout_fails_and_the_others_finish(tmp_path, db):
    spec = write_spec(tmp_path, [
        {"name": "slow", "notebook": "tests/notebooks/sleepy.ipynb", "parameters": {"seconds": 120}, "timeout": 3},
        {"name": "quick", "notebook": "tests/notebooks/sleepy.ipynb"},
    ])
    result = run_batch(spec, db, jobs=2)
    outcomes = {r["name"]: r for r in result.runs}
    assert outcomes["quick"]["status"] == "ok"
    assert outcomes["slow"]["status"] == "failed"
    assert outcomes["slow"]["error"] == "timed out after 3 s"
    assert outcomes["slow"]["seconds"] < 60
    assert (tmp_path / "reports" / "slow" / "slow.ipynb").exists(), "the evidence is kept"


def test_a_report_says_where_to_use_its_widgets_instead_of_printing_their_repr(tmp_path):
    import nbformat

    from crm_lab.batch.execute import WIDGET_MIME, _export_html

    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(panel)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        WIDGET_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(children=(FloatSlider(value=1.0, description='win rate x'),))"})]
    notebook.cells = [cell]
    path = tmp_path / "report.ipynb"
    nbformat.write(notebook, str(path))
    html = _export_html(path).read_text(encoding="utf-8")
    assert "VBox(" not in html and WIDGET_MIME not in html
    assert "(interactive controls: open the notebook in JupyterLab to use them)" in html


def test_a_run_kept_from_an_earlier_batch_is_marked_stale_when_the_spec_or_data_moved_on(tmp_path, db):
    from crm_lab.batch.run import _stale_reason

    runs = [{"name": "a", "notebook": TINY}, {"name": "b", "notebook": TINY}]
    run_batch(write_spec(tmp_path, runs), db, jobs=1)
    runs[1]["parameters"] = {"weeks": 2}
    again = run_batch(write_spec(tmp_path, runs), db, jobs=1, only=["a"])
    assert {r["name"]: r["stale"] for r in again.runs if r["name"] == "b"} == {
        "b": "the spec gives this run other parameters now (weeks)"}
    assert again.stale == ["b"] and "stale (kept from an earlier batch): b (rerun them with --only)" in again.summary()
    index = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    assert "test: 2 run(s), 0 failed, 1 stale" in index and "run it again with <code>--only b</code>" in index
    # Same parameters, other data; and a record from before fingerprints were kept cannot tell.
    record = {"parameters": {"weeks": 4}, "input_fingerprint": "old"}
    assert _stale_reason(record, {"weeks": 4}, "new") == "the database's data changed since it ran"
    assert _stale_reason({"parameters": {"weeks": 4}}, {"weeks": 4}, "new") is None
    # Another database given to this batch is named as such, not as a change of the spec.
    other = {"parameters": {"weeks": 4, "db_path": "/data/crm.duckdb"}, "input_fingerprint": "old"}
    assert _stale_reason(other, {"weeks": 4, "db_path": "/tmp/copy.duckdb"}, "new") == (
        "it ran on another database (/data/crm.duckdb)")


def test_a_run_kernel_is_shut_down_without_an_interrupt(monkeypatch):
    # jupyter_client's shutdown interrupts the kernel first; one landing mid-message made ipykernel
    # log "KeyboardInterrupt caught in kernel" under runs that succeeded.
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from jupyter_client.manager import AsyncKernelManager

    from crm_lab.batch.execute import LocalKernelManager

    interrupts = []

    async def counting_interrupt(self):
        interrupts.append("shutting down" if self.shutting_down else "running")

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", counting_interrupt)

    async def start_interrupt_stop():
        manager = LocalKernelManager(kernel_name="python3")
        await manager.start_kernel()
        try:
            await manager._async_interrupt_kernel()  # one asked for while it runs still goes through
        finally:
            await manager.shutdown_kernel()
        return manager.has_kernel

    # In a thread of its own: earlier tests may leave an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, start_interrupt_stop()).result() is False
    assert interrupts == ["running"]


# --- a scheduler that cannot run the batch, and --ingest of a folder with no batch ------------------

def _refused_address() -> str:
    """A local port nobody listens on: connecting is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def test_an_unreachable_scheduler_is_one_message_within_the_timeout_and_writes_nothing(tmp_path, db):
    import time

    from crm_lab.batch.run import SchedulerError

    address = _refused_address()
    spec = write_spec(tmp_path, [{"name": "tiny", "notebook": TINY}])
    started = time.monotonic()
    with pytest.raises(SchedulerError) as refused:
        run_batch(spec, db, scheduler=address, scheduler_timeout=1)
    assert time.monotonic() - started < 10
    assert str(refused.value) == (
        f"cannot reach the Dask scheduler at {address} (no answer within 1 s): check the address, or start the "
        f"scheduler (`dask scheduler`) and a worker (`dask worker {address}`); or leave out --scheduler to run on "
        "this machine's process pool (--jobs)"
    )
    assert not (tmp_path / "reports").exists(), "nothing ran, nothing was written"


def test_the_command_line_names_the_scheduler_in_one_line_without_a_traceback(tmp_path, db):
    import os

    address = _refused_address()
    spec = write_spec(tmp_path, [{"name": "tiny", "notebook": TINY}])
    done = subprocess.run([sys.executable, "-m", "crm_lab", "batch", str(spec), "--db", str(db), "--scheduler", address],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "CRM_LAB_SCHEDULER_TIMEOUT": "1"})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"crm-lab batch: cannot reach the Dask scheduler at {address} (no answer within 1 s): check the address, or "
        f"start the scheduler (`dask scheduler`) and a worker (`dask worker {address}`); or leave out --scheduler to "
        "run on this machine's process pool (--jobs)\n"
    )


def test_a_scheduler_address_of_another_scheme_is_refused_before_connecting(tmp_path, db):
    from crm_lab.batch.run import SchedulerError

    spec = write_spec(tmp_path, [{"name": "tiny", "notebook": TINY}])
    with pytest.raises(SchedulerError) as refused:
        run_batch(spec, db, scheduler="http://127.0.0.1:8786", scheduler_timeout=1)
    assert str(refused.value) == (
        "--scheduler http://127.0.0.1:8786: not a Dask scheduler address (unknown address scheme 'http' "
        "(known schemes: ['inproc', 'tcp', 'tls', 'ucx', 'ws', 'wss'])); give tcp://HOST:PORT; or leave out "
        "--scheduler to run on this machine's process pool (--jobs)"
    )


def test_a_scheduler_without_workers_says_so_instead_of_waiting_forever(tmp_path, db):
    distributed = pytest.importorskip("distributed")
    from crm_lab.batch.run import SchedulerError

    spec = write_spec(tmp_path, [{"name": "tiny", "notebook": TINY}])
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(SchedulerError) as refused:
            run_batch(spec, db, scheduler=address, scheduler_timeout=1)
    assert str(refused.value) == (
        f"the Dask scheduler at {address} has no worker (none joined within 1 s): start one with "
        f"`dask worker {address}`; or leave out --scheduler to run on this machine's process pool (--jobs)"
    )
    assert not (tmp_path / "reports").exists()


def _ingest(folder, db):
    return subprocess.run([sys.executable, "-m", "crm_lab", "batch", "--ingest", str(folder), "--db", str(db)],
                          capture_output=True, text=True, cwd=ROOT)


def test_ingest_of_a_folder_that_does_not_exist_or_holds_no_batch_is_an_error(tmp_path, db):
    from crm_lab.batch.run import ingest_only
    from crm_lab.errors import InvalidArgument

    missing, empty = tmp_path / "nonexist", tmp_path / "empty"
    empty.mkdir()
    done = _ingest(missing, db)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"crm-lab batch: --ingest {missing}: no such folder; "
                           "name a batch's output folder, e.g. reports/weekly\n")
    with pytest.raises(InvalidArgument) as refused:
        ingest_only(empty, db)
    assert str(refused.value) == (f"--ingest {empty}: holds no batch output (no batch.json or ledger.pending.json); "
                                  "name a batch's output folder, e.g. reports/weekly")
    with pytest.raises(InvalidArgument, match=r": not a folder; name a batch's output folder"):
        ingest_only(db, db)
    assert query(db, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'report_runs'") == [(0,)]


def test_ingest_of_a_batch_recorded_when_it_ran_says_there_is_nothing_to_ingest(tiny_batch):
    from crm_lab.batch.run import ingest_only

    folder, db, result = tiny_batch
    reports = folder / "reports"
    assert ingest_only(reports, db) == (
        f"nothing to ingest: {reports} has no pending ledger (ledger.pending.json); its batch {result.batch_id} "
        f"was recorded in {db} when it ran"
    )
    assert query(db, "SELECT count(*) FROM report_runs") == [(1,)]


# The results a report shows are stored under its report run (tests/conftest.py runs the batch).

RESULT_TABLES = ("forecast_runs", "forecast_summary", "forecast_deals", "forecast_backtest", "lead_sweep_runs",
                 "lead_sweeps", "territory_plans", "territory_assignments", "territory_plan_reps")


def _texts(notebook: dict) -> list[str]:
    """Every output of the executed notebook as text (streams, and tables' text/plain)."""
    return ["".join(o.get("text", "")) or "".join(o.get("data", {}).get("text/plain", ""))
            for cell in notebook["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]


def _counts(db: Path, where: str = "") -> dict[str, int]:
    return {table: query(db, f"SELECT count(*) FROM {table} {where}")[0][0] for table in RESULT_TABLES}


def test_a_reports_numbers_are_the_rows_stored_under_its_report_run(report_batch):
    from crm_lab import __version__

    db, batch_id = report_batch.db, report_batch.result.batch_id
    ledger = {name: (run_id, fingerprint) for run_id, name, fingerprint in
              query(db, "SELECT run_id, run_name, input_fingerprint FROM report_runs WHERE status = 'ok'")}
    assert sorted(ledger) == sorted(run["name"] for run in REPORT_RUNS)

    # Forecast: the company's window as the report shows it (whole units) is forecast_summary for
    # the report's run_id; its run record is a CLI run's, with the batch's input fingerprint.
    run_id, fingerprint = ledger["forecast-c1"]
    assert run_id == f"{batch_id}/forecast-c1"
    [shown] = [t for t in _texts(executed_notebook(report_batch, "forecast-c1")) if t.lstrip().startswith("period  period_kind")]
    header, *rows = shown.splitlines()
    [horizon] = [dict(zip(header.split(), row.split())) for row in rows if " horizon " in row]
    stored = query(db, "SELECT mean, p10, p50, p90, booked FROM forecast_summary WHERE run_id = ? AND scenario = 'baseline' "
                       "AND group_by = 'company' AND period_kind = 'horizon'", [run_id])
    assert [f"{float(v):,.0f}" for v in stored[0]] == [horizon[c] for c in ("mean", "p10", "p50", "p90", "booked")]
    records = query(db, "SELECT run_id, kind, company_id, seed, crm_lab_version, input_fingerprint, "
                        "json_extract(parameters, '$.trials')::INTEGER, trials FROM forecast_runs ORDER BY run_id")
    assert records == [(run_id, "forecast", "c1", 0, __version__, fingerprint, 500, 500),
                       (f"{run_id}/backtest", "backtest", "c1", 0, __version__, fingerprint, 100, 100)]
    assert query(db, "SELECT count(*) > 0 FROM forecast_deals WHERE run_id = ?", [run_id]) == [(True,)]
    assert query(db, "SELECT count(*) > 0 FROM forecast_backtest WHERE run_id = ?", [f"{run_id}/backtest"]) == [(True,)]
    stored_line = [t for t in _texts(executed_notebook(report_batch, "forecast-c1")) if t.startswith("stored by the batch")]
    assert stored_line == [f"stored by the batch with report run '{run_id}' (rows: forecast_runs 2, "
                           f"forecast_summary {_counts(db)['forecast_summary']}, forecast_deals {_counts(db)['forecast_deals']}, "
                           f"forecast_backtest {_counts(db)['forecast_backtest']}):\n"
                           f"  SELECT * FROM forecast_summary WHERE run_id = '{run_id}'\n"]

    # Leads: the cut-off the report chose is lead_sweep_runs' and lead_sweeps' chosen row.
    run_id, fingerprint = ledger["leads"]
    [chosen] = [m for t in _texts(executed_notebook(report_batch, "leads"))
                for m in re.findall(r"^threshold ([0-9.e-]+): route (\d+) lead\(s\)", t, re.MULTILINE)]
    [(threshold, routed, thresholds, company, seed, record_fingerprint)] = query(
        db, "SELECT chosen_threshold, chosen_routed, thresholds, company_id, seed, input_fingerprint "
            "FROM lead_sweep_runs WHERE run_id = ?", [run_id])
    assert (f"{threshold:.6g}", str(routed), company, seed, record_fingerprint) == (*chosen, "c2", 3, fingerprint)
    assert query(db, "SELECT threshold, routed FROM lead_sweeps WHERE run_id = ? AND is_chosen", [run_id]) == [(threshold, routed)]
    assert query(db, "SELECT count(*) FROM lead_sweeps WHERE run_id = ?", [run_id]) == [(thresholds,)]

    # Territory: the plan's moves and each what-if's row of the comparison are territory_plans'.
    run_id, fingerprint = ledger["territory-c2"]
    texts = _texts(executed_notebook(report_batch, "territory-c2"))
    [moved] = [m for t in texts if t.startswith("territory plan for c2: ") for m in re.findall(r"moved (\d+) account", t)][:1]
    [comparison] = [t for t in texts if t.lstrip().startswith("plan ")]
    plans = dict(query(db, "SELECT plan_id, moved FROM territory_plans WHERE company_id = 'c2'"))
    assert plans == {
        run_id: int(moved),
        f"{run_id}/add-new-9": int(re.search(r"^\s*\+ new-9\s+\S+\s+\S+\s+\d+\s+(\d+)", comparison, re.M).group(1)),
        f"{run_id}/remove-rep-0002": int(re.search(r"^- rep-0002\s+\S+\s+\S+\s+\d+\s+(\d+)", comparison, re.M).group(1)),
        f"{run_id}/strict": plans[f"{run_id}/strict"],
    }
    whatif = query(db, "SELECT json_extract(parameters, '$.add_reps[0].rep_id')::VARCHAR, input_fingerprint "
                       "FROM territory_plans WHERE plan_id = ?", [f"{run_id}/add-new-9"])
    assert whatif == [('"new-9"', fingerprint)]
    assert query(db, "SELECT count(DISTINCT plan_id) FROM territory_assignments WHERE starts_with(plan_id, ?)",
                 [run_id]) == [(4,)]

    # The batch's summary (what `make demo` prints) says where the results went.
    summary = report_batch.result.summary()
    counts = ", ".join(f"{t} {n}" for t, n in sorted(_counts(db).items()))
    assert f"results stored with their report runs (rows): {counts}\n" in summary
    assert (f"  SELECT r.run_name, t.* FROM forecast_summary t JOIN report_runs r USING (run_id) "
            f"WHERE r.batch_id = '{batch_id}'") in summary


def test_a_company_session_shows_its_reports_beside_their_results(report_batch):
    from crm_lab.tenancy import open_connection

    for company, expected in (("c1", {"forecast-c1"}), ("c2", {"leads", "territory-c2"})):
        con = open_connection(report_batch.db, company)
        try:
            assert {name for (name,) in con.sql("SELECT run_name FROM report_runs").fetchall()} == expected
            linked = con.sql("""
                SELECT DISTINCT r.run_name FROM report_runs r JOIN (
                    SELECT run_id FROM forecast_summary UNION ALL SELECT run_id FROM lead_sweeps
                    UNION ALL SELECT plan_id FROM territory_plans) USING (run_id)""").fetchall()
            assert {name for (name,) in linked} == expected
            assert con.sql("SELECT DISTINCT company_id FROM forecast_runs UNION SELECT DISTINCT company_id FROM territory_plans "
                           "UNION SELECT DISTINCT company_id FROM lead_sweep_runs").fetchall() == [(company,)]
        finally:
            con.close()


def test_ingesting_a_batch_twice_stores_its_results_once(report_batch, tmp_path):
    from crm_lab.batch.ledger import PENDING, ingest, ledger_rows, read_manifest
    from crm_lab.batch.run import ingest_only

    db = tmp_path / "crm.duckdb"
    shutil.copy(sample_database(), db)
    manifest = read_manifest(report_batch.reports)
    # As a busy database leaves them; and as runs whose parameters name no company would be: the
    # one company of a run's results is its report_runs.company_id.
    rows = [{**row, "company_id": None} for row in ledger_rows(manifest, manifest["batch_id"])]
    out = tmp_path / "reports"
    out.mkdir()
    (out / PENDING).write_text(json.dumps(rows), encoding="utf-8")
    first = ingest_only(out, db)
    assert first.startswith("ledger: 3 run(s) recorded in report_runs\nresults stored with their report runs (rows): ")
    stored = _counts(db)
    assert stored == _counts(report_batch.db) and all(stored.values())
    assert query(db, "SELECT run_name, company_id FROM report_runs ORDER BY 1") == [
        ("forecast-c1", "c1"), ("leads", "c2"), ("territory-c2", "c2")]

    # Again, as the batch's writer and as `crm-lab batch --ingest` with the pending ledger back.
    assert ingest(db, out, rows) == "ledger: 0 run(s) recorded in report_runs (3 already there)"
    (out / PENDING).write_text(json.dumps(rows + rows), encoding="utf-8")
    assert ingest_only(out, db) == "ledger: 0 run(s) recorded in report_runs (3 already there)"
    assert _counts(db) == stored and query(db, "SELECT count(*) FROM report_runs") == [(3,)]


def test_each_batch_gives_a_run_a_fresh_results_folder_and_drops_the_stored_ones(tmp_path):
    from crm_lab.batch.ledger import PENDING, prepare_results_dir
    from crm_lab.batch.run import _stale_reason
    from crm_lab.results import REPORT_RUN_FILE, report_run_id

    results = tmp_path / "forecast" / "results"
    stored, waiting = results / "batch-1", results / "batch-2"
    for folder in (stored, waiting):
        folder.mkdir(parents=True)
        (folder / "forecast_summary.parquet").write_bytes(b"rows")
    # batch-2's ledger is still pending (the database was busy): its files wait for --ingest.
    (tmp_path / PENDING).write_text(json.dumps([{"run_id": "batch-2/forecast", "results_dir": str(waiting)}]))
    prepare_results_dir(tmp_path, str(results / "batch-3"), "batch-3/forecast", batch_id="batch-3")
    assert sorted(p.name for p in results.iterdir()) == ["batch-2", "batch-3"]
    assert [p.name for p in (results / "batch-3").iterdir()] == [REPORT_RUN_FILE]
    assert report_run_id(results / "batch-3") == "batch-3/forecast"
    # A run kept from an earlier batch is not stale for having had that batch's folder.
    record = {"parameters": {"db_path": "x", "results_dir": str(stored)}, "input_fingerprint": "f"}
    assert _stale_reason(record, {"db_path": "x", "results_dir": str(results / "batch-3")}, "f") is None


# --- stopping a batch: SIGTERM, SIGHUP, Ctrl-C, or its process killed --------------------------------

SLEEPY = "tests/notebooks/sleepy.ipynb"


def _start_batch(spec: Path, db: Path, *options: str) -> subprocess.Popen:
    # A session of its own, as a batch started by a scheduler or a shell's job: its signals are ours.
    return subprocess.Popen([sys.executable, "-m", "crm_lab", "batch", str(spec), "--db", str(db), *options],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_kernels(batch: subprocess.Popen, count: int) -> list:
    """Every process the batch started, once ``count`` kernels are running their notebooks."""
    import time

    import psutil

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert batch.poll() is None, batch.communicate()
        started = psutil.Process(batch.pid).children(recursive=True)
        kernels = [p for p in started if "ipykernel_launcher" in " ".join(p.cmdline())]
        if len(kernels) == count:
            return started
        time.sleep(0.2)
    raise AssertionError(f"no {count} kernels within 90 s")


def _all_gone(processes: list, within: float) -> list:
    """The processes still running (a zombie is gone: this machine's init may not reap them)."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=within)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_stop_signal_stops_the_batch_its_workers_and_their_kernels_and_says_so(tmp_path, db):
    import signal

    from crm_lab.batch.ledger import read_manifest
    from crm_lab.batch.run import _select

    spec = write_spec(tmp_path, [{"name": f"nap-{n}", "notebook": SLEEPY, "parameters": {"seconds": 300}} for n in (1, 2, 3)])
    reports = tmp_path / "reports"
    (reports / "nap-1").mkdir(parents=True)
    (reports / "nap-1" / "nap-1.ipynb").write_text("an earlier batch's report")
    batch = _start_batch(spec, db, "--jobs", "2")
    started = _wait_for_kernels(batch, 2)
    # While it runs, its runs are 'running' (none 'ok' before it ended), and papermill writes
    # each notebook under a temporary name.
    assert [r["status"] for r in read_manifest(reports)["runs"]] == ["running"] * 3
    assert "test: 3 run(s), 0 failed, 3 running" in (reports / "index.html").read_text()
    assert (reports / "nap-1" / ".nap-1.partial.ipynb").exists()
    # One batch at a time in a folder: a second one is refused, naming the first.
    from crm_lab.batch.lock import BatchBusyError

    holder = json.loads((reports / ".batch.lock").read_text())
    assert holder["pid"] == batch.pid
    with pytest.raises(BatchBusyError) as busy:
        run_batch(spec, db)
    assert str(busy.value).startswith(f"batch {holder['batch_id']} (pid {batch.pid}, started ")
    assert str(busy.value).endswith(f") is writing into {reports}: wait for it to end, stop it (kill {batch.pid}), "
                                    "or write this batch elsewhere with --out DIR")
    batch.send_signal(signal.SIGTERM)
    out, err = batch.communicate(timeout=30)
    assert batch.returncode == 128 + signal.SIGTERM
    assert (out, err) == ("", "crm-lab batch: stopped by SIGTERM: stopped 2 running run(s) and their kernels (nap-1, nap-2), "
                              "cancelled 1 queued (nap-3); 0 run(s) had ended; rerun the others with --retry-failed\n")
    assert _all_gone(started, within=5) == [], "no worker, kernel or resource tracker outlives the batch"
    manifest = read_manifest(tmp_path / "reports")
    assert [(r["name"], r["status"], r["error"]) for r in manifest["runs"]] == [
        ("nap-1", "interrupted", "stopped by SIGTERM while it ran"), ("nap-2", "interrupted", "stopped by SIGTERM while it ran"),
        ("nap-3", "interrupted", "cancelled by SIGTERM before it started")]
    assert [r.name for r in _select(load_spec(spec), None, True, manifest)] == ["nap-1", "nap-2", "nap-3"]
    assert not (reports / "nap-3").exists(), "a cancelled run never started"
    # The stopped runs' half-written notebooks are gone; an earlier report is left as it was, unlisted.
    assert sorted(p.name for p in reports.glob("nap-*/*")) == ["nap-1.ipynb"]
    assert (reports / "nap-1" / "nap-1.ipynb").read_text() == "an earlier batch's report"
    index = (reports / "index.html").read_text()
    assert "test: 3 run(s), 0 failed, 3 interrupted" in index and "nap-1.ipynb" not in index
    assert query(db, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'report_runs'") == [(0,)]
    assert not (reports / ".batch.lock").exists()


def test_a_worker_stops_when_the_batch_process_is_killed():
    """Nothing of a killed batch process runs: its workers watch it and exit, killing their
    kernels as on SIGTERM (above)."""
    import signal

    import psutil

    batch = subprocess.Popen([sys.executable, "-c", "from crm_lab.batch.pool import WorkerPool; import time; "
                              "pool = WorkerPool(1); print(pool.workers[0].process.pid, flush=True); time.sleep(300)"],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    worker = psutil.Process(int(batch.stdout.readline()))
    batch.send_signal(signal.SIGKILL)
    batch.communicate(timeout=30)
    assert _all_gone([worker], within=10) == []


def test_stop_signals_are_taken_after_polars_replaced_the_sigint_handler():
    import os
    import signal
    import time

    from crm_lab.stopping import STOP_SIGNALS, Stopped, stop_signals

    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    with stop_signals() as stop:
        assert "polars" in sys.modules
        assert all(signal.getsignal(signum) == stop._record for signum in STOP_SIGNALS)
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGINT)  # a second signal changes nothing
        time.sleep(0.1)
    assert (stop.signum, stop.name) == (signal.SIGHUP, "SIGHUP")
    assert {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} == before
    stopped = Stopped(signal.SIGHUP, "stopped")
    assert isinstance(stopped, SystemExit) and stopped.code == 129


def test_each_run_records_the_data_it_read_and_the_batch_says_when_they_differ(tmp_path, db):
    """A replay mid-batch (here during the first run): that run read data that changed under it,
    the next read the new data; the ledger says so per run, the summary and index flag the batch."""
    from crm_lab.db import reading
    from crm_lab.runs import input_fingerprint

    with reading(db) as con:
        old = input_fingerprint(con)
    spec = write_spec(tmp_path, [{"name": "a-replayed", "notebook": "tests/notebooks/replays_mid_run.ipynb"},
                                 {"name": "b-after", "notebook": SLEEPY}])
    result = run_batch(spec, db, jobs=1)  # one worker: b runs after a
    with reading(db) as con:
        new = input_fingerprint(con)
    assert new != old
    assert query(db, "SELECT run_name, status, input_fingerprint FROM report_runs ORDER BY 1") == [
        ("a-replayed", "ok", None), ("b-after", "ok", new)]
    [replayed] = [r for r in result.runs if r["name"] == "a-replayed"]
    assert replayed["data_note"] == (f"the data changed while it ran (a load or replay): {old[:12]} before, {new[:12]} after")
    warning = ("warning: the runs of this batch read different data (a load or replay ran during it): "
               f"data {new[:12]}: b-after; data changed while running: a-replayed; rerun the batch once the data has settled")
    assert result.data_warning == warning and warning in result.summary()
    assert warning in (tmp_path / "reports" / "index.html").read_text()


def test_a_run_stops_when_its_batch_no_longer_holds_the_output_folder(tmp_path):
    """As on a Dask worker, which a stopped batch process cannot kill: the run watches the folder's
    lock and stops, writing nothing, once its batch has let go of it."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from crm_lab.batch.execute import _batch_holds, execute_run

    lock = tmp_path / ".batch.lock"
    lock.write_text(json.dumps({"pid": 1, "batch_id": "batch-1"}))
    assert _batch_holds(str(lock), "batch-1") and not _batch_holds(str(lock), "batch-2")
    threading.Timer(3, lock.unlink).start()
    started = time.monotonic()
    with ThreadPoolExecutor(1) as thread:  # papermill's event loop in a thread of its own
        outcome = thread.submit(execute_run, "nap", str(ROOT / SLEEPY), {"seconds": 120}, str(tmp_path / "nap"), 300,
                                str(ROOT), batch_lock=str(lock), batch_id="batch-1").result()
    assert time.monotonic() - started < 60
    assert (outcome.status, outcome.error, outcome.output_notebook) == ("interrupted", "its batch stopped while it ran", None)
    assert list((tmp_path / "nap").iterdir()) == []
