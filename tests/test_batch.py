"""Batch reports end to end: spec validation before any kernel starts, parallel runs with failure
isolation, self-contained HTML, the ledger, retries, a busy database, and a Dask cluster giving
the same results as the local pool."""

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
from tests.conftest import query

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
])
def test_a_bad_spec_is_refused_before_any_kernel_starts(tmp_path, db, runs, message):
    spec = write_spec(tmp_path, runs)
    with pytest.raises(SpecError) as refused:
        run_batch(spec, db)
    assert message in str(refused.value)
    assert not (tmp_path / "reports").exists(), "nothing ran, nothing was written"


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


def test_reports_are_self_contained_html_with_embedded_charts(tmp_path, db):
    result = run_batch(write_spec(tmp_path, [{"name": "tiny", "notebook": TINY}]), db, jobs=1)
    html = Path(result.runs[0]["output_html"]).read_text(encoding="utf-8")
    assert html.count("<img alt=\"No description has been provided for this image\" class=\"\" src=\"data:image/png;base64,") == 1
    assert not re.findall(r"(?:src|href)=\"https?://", html), "a report must not load anything from the network"
    assert "from crm_lab" not in html, "code cells are hidden in reports"
    ledger = query(db, "SELECT status, input_fingerprint, crm_lab_version FROM report_runs")
    assert ledger[0][0] == "ok" and len(ledger[0][1]) == 64


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


def test_ingest_of_a_batch_recorded_when_it_ran_says_there_is_nothing_to_ingest(tmp_path, db):
    from crm_lab.batch.run import ingest_only

    result = run_batch(write_spec(tmp_path, [{"name": "tiny", "notebook": TINY}]), db)
    reports = tmp_path / "reports"
    assert ingest_only(reports, db) == (
        f"nothing to ingest: {reports} has no pending ledger (ledger.pending.json); its batch {result.batch_id} "
        f"was recorded in {db} when it ran"
    )
    assert query(db, "SELECT count(*) FROM report_runs") == [(1,)]
