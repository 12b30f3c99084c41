"""One notebook run: papermill through its Python API, then self-contained HTML. Runs in a worker
process (a local pool or a Dask worker), one kernel per run."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import threading
import time
import uuid
import weakref
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import papermill
import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbconvert import HTMLExporter
from traitlets import CaselessStrEnum, default

# How often a run checks that its batch still holds the output folder.
LOCK_POLL_SECONDS = 1.0
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Script and stylesheet tags that would fetch from the network when the report is opened.
REMOTE_TAG = re.compile(
    r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>|<link[^>]*\bhref=\"https?://[^\"]*\"[^>]*>",
    re.IGNORECASE,
)


@dataclass
class RunOutcome:
    name: str
    notebook: str
    parameters: dict[str, Any]
    status: str  # 'ok' or 'failed' (the batch records runs a stop cut short as 'interrupted')
    started_at: str | None
    seconds: float
    error: str | None
    output_notebook: str
    output_html: str | None
    results_dir: str | None
    # The data the run read (crm_lab.runs.input_fingerprint): its results' own fingerprint when
    # they carry one, else the database's, checked before and after the run; None when the data
    # changed while it ran (or could not be read), and then data_note says why.
    input_fingerprint: str | None = None
    data_note: str | None = None
    data_changed: bool = False  # the data changed while it ran

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unfinished_outcome(task: dict[str, Any], status: str, error: str | None,
                       started_at: str | None = None) -> dict[str, Any]:
    """The record of a run that has not ended by itself: ``running`` (its batch is running it),
    ``interrupted`` (the batch was stopped) or ``failed`` (its worker died); no output of its own."""
    return RunOutcome(
        name=task["name"], notebook=task["notebook"], parameters=task["parameters"], status=status,
        started_at=started_at or datetime.now(timezone.utc).isoformat(), seconds=0.0, error=error,
        output_notebook=None, output_html=None, results_dir=None,
    ).to_dict()


# The kernel managers of this process, so that a worker told to stop can remove their connection
# and socket files after killing the kernels.
_MANAGERS: weakref.WeakSet = weakref.WeakSet()


class LocalKernelManager(AsyncKernelManager):
    """Kernels reached over Unix sockets instead of TCP ports: nothing listens on the network, and
    ipykernel (7.x) warns on every TCP start that its traffic is unencrypted."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _unique_socket_prefix(self) -> str:
        # jupyter_client's default prefix is "kernel-ipc" in the working directory, shared by
        # every kernel of a parallel batch: two kernels then bind the same sockets. (Short: a
        # Unix socket's path has a limit of about 100 characters.)
        _MANAGERS.add(self)
        runtime = jupyter_runtime_dir()
        os.makedirs(runtime, exist_ok=True)
        return os.path.join(runtime, f"crm-lab-{uuid.uuid4().hex[:12]}")

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client 8 sends SIGINT before every shutdown request. A run's kernel is shut down
        # after its last cell, when nothing is left to interrupt, but the signal can land while
        # ipykernel still handles a last message (a comm, a flush): it then logs "ERROR |
        # KeyboardInterrupt caught in kernel" under a run that succeeded. The shutdown request
        # alone stops the kernel; SIGTERM and SIGKILL still follow if it does not.
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()


def execute_run(name: str, notebook: str, parameters: dict[str, Any], run_dir: str, timeout_s: int, cwd: str,
                db_path: str | None = None, batch_lock: str | None = None, batch_id: str | None = None) -> RunOutcome:
    """Execute one notebook into ``run_dir`` (``<name>.ipynb`` and ``<name>.html``). A failure
    keeps its evidence: papermill writes the executed notebook with the error at the top, and the
    HTML shows it too. Never raises for a notebook's own failure."""
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    output_notebook = out / f"{name}.ipynb"
    # Written under a temporary name and moved into place once the run has ended: a run stopped
    # half-way never leaves a half-written report where a finished one is expected.
    partial = partial_notebook(out, name)
    partial.unlink(missing_ok=True)
    before = _fingerprint(db_path)
    started_at = datetime.now(timezone.utc).isoformat()
    started = time.perf_counter()
    error = None
    watchdog = _Watchdog(timeout_s, batch_lock, batch_id)
    try:
        papermill.execute_notebook(
            notebook,
            str(partial),
            parameters=parameters,
            kernel_name="python3",
            cwd=cwd,
            progress_bar=False,
            log_output=False,
            kernel_manager_class=LocalKernelManager,
        )
    except papermill.PapermillExecutionError as failure:
        error = f"{failure.ename}: {failure.evalue} (cell {failure.exec_count})"
    except Exception as failure:  # a dead or killed kernel, a missing file: still a failed run, not a crash
        error = f"{type(failure).__name__}: {str(failure).strip().splitlines()[0] if str(failure).strip() else ''}"
    finally:
        watchdog.stop()
    if watchdog.fired:
        error = f"timed out after {timeout_s} s"
    seconds = time.perf_counter() - started
    if watchdog.abandoned:  # its batch has stopped: nothing is written into its folder any more
        partial.unlink(missing_ok=True)
        return RunOutcome(name=name, notebook=notebook, parameters=parameters, status="interrupted",
                          started_at=started_at, seconds=seconds, error="its batch stopped while it ran",
                          output_notebook=None, output_html=None, results_dir=None)
    after = _fingerprint(db_path)
    html = written = None
    if partial.exists():
        try:
            html = _put_in_place(partial, output_notebook)
        except Exception as failure:  # an unreadable notebook: kept as the evidence, the run failed
            os.replace(partial, output_notebook)
            error = error or f"the report could not be written: {type(failure).__name__}: {failure}"
        written = output_notebook
    results_dir = parameters.get("results_dir")
    if results_dir and not Path(results_dir).exists():
        results_dir = None
    fingerprint, data_note, data_changed = _data_read(db_path, before, after, results_dir)
    return RunOutcome(
        name=name,
        notebook=notebook,
        parameters=parameters,
        status="failed" if error else "ok",
        started_at=started_at,
        seconds=seconds,
        error=error,
        output_notebook=str(written) if written else None,
        output_html=str(html) if html else None,
        results_dir=results_dir,
        input_fingerprint=fingerprint,
        data_note=data_note,
        data_changed=data_changed,
    )


def _fingerprint(db_path: str | None) -> str | None:
    """The input fingerprint of the database now (None when there is none to read)."""
    if not db_path:
        return None
    from crm_lab.db import reading
    from crm_lab.errors import CrmLabError
    from crm_lab.runs import input_fingerprint

    try:
        with reading(db_path) as con:
            return input_fingerprint(con)
    except CrmLabError:  # missing, locked by a writer past the timeout: the run says so itself
        return None


def _data_read(db_path: str | None, before: str | None, after: str | None,
               results_dir: str | None) -> tuple[str | None, str | None, bool]:
    """The fingerprint of the data a run read, a note when that is not the whole story, and
    whether the data changed while it ran. The notebook's own read wins: result files that carry
    ``input_fingerprint`` (forecast, lead sweep and territory plan records) say what it read;
    else the database's fingerprints before and after the run must agree."""
    own = _results_fingerprints(results_dir)
    changed = bool(db_path) and before != after
    moved = (f"the data changed while it ran (a load or replay): {before[:12] if before else 'unreadable'} "
             f"before, {after[:12] if after else 'unreadable'} after")
    if len(own) > 1:
        return None, f"its results read different data ({', '.join(sorted(f[:12] for f in own))})", True
    if own:
        fingerprint = own.pop()
        return fingerprint, f"{moved}; its stored results read {fingerprint[:12]}" if changed else None, changed
    if not db_path:
        return None, None, False
    if changed:
        return None, moved, True
    if before is None:
        return None, f"the database {db_path} could not be read to fingerprint its data", False
    return before, None, False


def _results_fingerprints(results_dir: str | None) -> set[str]:
    if not results_dir:
        return set()
    import duckdb

    found: set[str] = set()
    with duckdb.connect() as con:
        for parquet in sorted(Path(results_dir).glob("*.parquet")):
            try:
                names = {n for (n,) in con.execute("SELECT name FROM parquet_schema(?)", [str(parquet)]).fetchall()}
                if "input_fingerprint" in names:
                    found |= {f for (f,) in con.execute("SELECT DISTINCT input_fingerprint FROM read_parquet(?) "
                                                         "WHERE input_fingerprint IS NOT NULL", [str(parquet)]).fetchall()}
            except duckdb.Error:  # a file a failed run left half-written: the database's check stands
                continue
    return found


def partial_notebook(run_dir: Path, name: str) -> Path:
    """Where a run's notebook is written while it runs (hidden; papermill wants an .ipynb name)."""
    return Path(run_dir) / f".{name}.partial.ipynb"


def _put_in_place(partial: Path, output_notebook: Path) -> Path:
    """Move an ended run's notebook and its HTML into place, each written whole under a temporary
    name first; the notebook's papermill metadata names its place. Returns the HTML's path."""
    nb = nbformat.read(str(partial), as_version=4)
    if "papermill" in nb.metadata:
        nb.metadata.papermill["output_path"] = str(output_notebook)
    html = _export_html(partial, output_notebook.with_suffix(".html"), nb=nb)
    nbformat.write(nb, str(partial))
    os.replace(partial, output_notebook)
    return html


class _Watchdog:
    """Kills this process's children (the kernel) when a run overstays its timeout (papermill's
    own timeout is per cell, a report's is per run: ``fired``), or when its batch has stopped:
    ``batch_lock`` (the output folder's lock file) is gone or names another batch (``abandoned``;
    a run on a Dask worker outlives a stopped batch process otherwise)."""

    def __init__(self, timeout_s: float, batch_lock: str | None = None, batch_id: str | None = None) -> None:
        self.fired = False
        self.abandoned = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(timeout_s, batch_lock, batch_id), daemon=True)
        self._thread.start()

    def _watch(self, timeout_s: float, batch_lock: str | None, batch_id: str | None) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._stop.wait(max(0.0, min(LOCK_POLL_SECONDS, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                self.fired = True
                break
            if batch_lock and not _batch_holds(batch_lock, batch_id):
                self.abandoned = True
                break
        else:
            return
        _kill_children()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _batch_holds(batch_lock: str, batch_id: str | None) -> bool:
    """Whether the output folder's lock still names this run's batch (a lock file being
    rewritten, unreadable for an instant, still counts as held)."""
    try:
        text = Path(batch_lock).read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        return json.loads(text).get("batch_id") in (None, batch_id)
    except ValueError:
        return True


def _kill_children() -> None:
    """SIGKILL to this process's children (its kernels) and to what they started: a kernel is
    the leader of a session of its own (jupyter_client), so its group takes its children too."""
    for child in psutil.Process().children(recursive=True):
        try:
            if os.getpgid(child.pid) == child.pid:
                os.killpg(child.pid, signal.SIGKILL)
            else:
                child.kill()
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            pass


def kill_kernels() -> None:
    """Kill this worker's kernels and remove their connection and socket files (a worker told to
    stop; it then exits without waiting for them)."""
    _kill_children()
    for manager in list(_MANAGERS):
        try:
            manager.cleanup_connection_file()
            manager.cleanup_ipc_files()
        except Exception:  # best effort: the process is about to exit
            pass


def _export_html(notebook_path: Path, target: Path | None = None, *, nb=None) -> Path:
    """HTML that shows everything offline: code hidden, charts as embedded images, widget views
    (which need a renderer from a CDN) replaced by a line saying where to use them, remote
    scripts removed. Written to ``target`` (default: beside the notebook) through a temporary
    file; ``nb``: the notebook already read (it is not changed)."""
    nb = nbformat.from_dict(copy.deepcopy(nb)) if nb is not None else nbformat.read(str(notebook_path), as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and WIDGET_MIME in data:
                # Its text fallback is the widget's repr (VBox(children=(FloatSlider(...): a
                # sentence reads better in a report.
                data.clear()
                data["text/plain"] = "(interactive controls: open the notebook in JupyterLab to use them)"
    exporter = HTMLExporter(exclude_input=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    target = target or notebook_path.with_suffix(".html")
    temporary = target.with_name(f".{target.name}.partial")
    temporary.write_text(REMOTE_TAG.sub("", body), encoding="utf-8")
    os.replace(temporary, target)
    return target
