"""``crm-lab batch``: run a pipeline spec's notebooks in parallel and collect the results."""

from __future__ import annotations

import fnmatch
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from crm_lab import __version__
from crm_lab.batch.execute import execute_run, partial_notebook, unfinished_outcome
from crm_lab.batch.ledger import (
    PENDING, ingest, ledger_rows, prepare_results_dir, queue_pending, read_manifest, run_id_of, write_manifest,
)
from crm_lab.batch.lock import LOCK_FILE, output_lock
from crm_lab.batch.pool import PoolOutcome, WorkerPool
from crm_lab.batch.report_index import write_index
from crm_lab.batch.spec import PipelineSpec, RunSpec, SpecError, load_spec
from crm_lab.db import DEFAULT_DB, reading, require_database
from crm_lab.errors import CrmLabError, InvalidArgument
from crm_lab.runs import input_fingerprint, new_run_id
from crm_lab.stopping import StopRequest, Stopped, stop_signals

# Seconds to wait for a Dask scheduler to answer, and then for a worker to join it
# (``CRM_LAB_SCHEDULER_TIMEOUT``; Dask's own default of 30 s leaves a user staring at nothing).
SCHEDULER_TIMEOUT = 10.0


class SchedulerError(CrmLabError):
    """The Dask scheduler of ``--scheduler`` cannot run the batch (unreachable, no workers)."""


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    index: Path
    runs: list[dict[str, Any]]
    ledger_note: str
    data_warning: str | None = None  # the runs read different data (see data_warning)

    @property
    def failed(self) -> list[str]:
        return sorted(run["name"] for run in self.runs if run["status"] != "ok")

    @property
    def stale(self) -> list[str]:
        return sorted(run["name"] for run in self.runs if run.get("stale"))

    def summary(self) -> str:
        lines = [f"batch {self.batch_id}: {len(self.runs)} run(s), {len(self.failed)} failed", self.ledger_note]
        if self.failed:
            lines.append(f"failed: {', '.join(self.failed)} (rerun them alone with --retry-failed)")
        if self.stale:
            lines.append(f"stale (kept from an earlier batch): {', '.join(self.stale)} (rerun them with --only)")
        if self.data_warning:
            lines.append(self.data_warning)
        lines.append(f"index: {self.index}")
        return "\n".join(lines)


def run_batch(
    spec_path: str | os.PathLike,
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    jobs: int = 2,
    only: list[str] | None = None,
    retry_failed: bool = False,
    scheduler: str | None = None,
    output: str | os.PathLike | None = None,
    lock_timeout: float | None = None,
    scheduler_timeout: float | None = None,
) -> BatchResult:
    """Run a pipeline's notebooks with papermill and write reports, an index and the ledger.

    Parameters
    ----------
    spec_path : path
        A pipeline spec (``pipelines/*.yaml``), validated before any kernel starts.
    db_path : path
        The workbench database, given to every notebook that declares ``db_path`` and receiving
        the ledger (``report_runs``) and the runs' result files.
    jobs : int
        Notebooks run at once in the local process pool.
    only : list of str, optional
        Run names or glob patterns to run; the others are left as they were.
    retry_failed : bool
        Rerun only the runs that failed in the last batch into the same output folder.
    scheduler : str, optional
        A Dask scheduler address (``tcp://host:port``): run there instead of the local pool.
    output : path, optional
        Output folder instead of the spec's.
    lock_timeout : float, optional
        Seconds the ledger writer waits for the database.
    scheduler_timeout : float, optional
        Seconds to wait for ``scheduler`` to answer and for a worker to join it (default
        ``CRM_LAB_SCHEDULER_TIMEOUT``, else 10); then :class:`SchedulerError`, before anything
        runs.

    SIGINT (Ctrl-C), SIGTERM or SIGHUP stop the batch: queued runs are cancelled, running ones
    stopped with their workers and kernels, the manifest records them as ``interrupted`` (so
    ``--retry-failed`` reruns them) and the ended runs' ledger is kept on disk; then one line on
    stderr and :class:`crm_lab.stopping.Stopped` (exit status 128 + signal, no traceback).
    """
    if jobs < 1:
        raise SpecError(f"jobs must be >= 1, got {jobs}")
    # SIGINT, SIGTERM and SIGHUP stop the batch in order (see _stopped) instead of killing this
    # process alone, which left its workers running the queued notebooks.
    with stop_signals() as stop:
        return _run_batch(spec_path, db_path, stop, jobs=jobs, only=only, retry_failed=retry_failed,
                          scheduler=scheduler, output=output, lock_timeout=lock_timeout,
                          scheduler_timeout=scheduler_timeout)


def _run_batch(spec_path, db_path, stop: StopRequest, *, jobs, only, retry_failed, scheduler, output,
               lock_timeout, scheduler_timeout) -> BatchResult:
    spec = load_spec(spec_path)
    out_dir = Path(output or spec.output).resolve()
    previous = _settled(read_manifest(out_dir))
    selected = _select(spec, only, retry_failed, previous)
    db_path = Path(db_path).resolve()
    with reading(db_path) as con:
        fingerprint = input_fingerprint(con)
    # Reach the scheduler before writing anything: an unreachable one leaves no trace.
    client = connect_scheduler(scheduler, scheduler_timeout) if scheduler and selected else None
    with ExitStack() as held:
        if client is not None:
            held.callback(client.close)
        if stop:
            raise _stopped(stop, " before any run started; nothing was written")
        batch_id = new_run_id(f"batch-{spec.name}")
        out_dir.mkdir(parents=True, exist_ok=True)
        # One batch at a time in a folder (its manifest, reports and ledger are the batch's).
        held.enter_context(output_lock(out_dir, batch_id))
        # Read again under the lock: a batch that ended meanwhile may have changed the folder.
        previous = _settled(read_manifest(out_dir))
        selected = _select(spec, only, retry_failed, previous)
        planned = [_with_batch_parameters(run, spec, db_path, out_dir, batch_id) for run in selected]
        # Runs of the spec not run this time (--only, --retry-failed) keep their last outcome, marked
        # stale when the spec now gives them other parameters or the data changed since.
        current = {run.name: _with_batch_parameters(run, spec, db_path, out_dir, batch_id)["parameters"] for run in spec.runs}
        rerun = {p["name"] for p in planned}
        kept = [
            {**r, "stale": _stale_reason(r, current[r["name"]], fingerprint)}
            for r in (previous or {}).get("runs", [])
            if r["name"] in current and r["name"] not in rerun
        ]
        record = _BatchRecord(out_dir, {
            "pipeline": spec.name,
            "spec": str(spec.path),
            "batch_id": batch_id,
            "started_at": datetime.now(timezone.utc).isoformat(),
            "finished_at": None,
            "db_path": str(db_path),
            "input_fingerprint": fingerprint,
            "crm_lab_version": __version__,
        }, kept, planned)
        record.write()  # every run of this batch 'running' until it ends: a killed batch leaves no 'ok'
        for plan in planned:
            if "results_dir" in plan["parameters"]:
                prepare_results_dir(out_dir, plan["parameters"]["results_dir"], run_id_of(batch_id, plan["name"]),
                                    batch_id=batch_id, run_name=plan["name"], pipeline=spec.name)
        done = _execute(planned, jobs, client, stop, started=record.started, finished=record.ended)
        interrupted = stop and (done.running or done.queued)
        if interrupted:
            for name in done.running:
                record.interrupted(name, f"stopped by {stop.name} while it ran")
            for name in done.queued:
                record.interrupted(name, f"cancelled by {stop.name} before it started")
        manifest = record.finish()
        index = out_dir / "index.html"
        rows = ledger_rows(manifest, batch_id)
        if interrupted:
            # No database work on the way out (a busy database would hold the stop up): the ended
            # runs' ledger waits on disk for the next batch or --ingest.
            kept_note = ""
            if rows:
                pending = queue_pending(out_dir, rows)
                kept_note = f" (their ledger is kept in {pending}, recorded by the next batch or `crm-lab batch --ingest {out_dir}`)"
            stopped = [f"stopped {len(done.running)} running run(s) and their kernels ({', '.join(done.running)})"] if done.running else []
            if done.queued:
                what = "unfinished run(s) on the Dask cluster" if client is not None else "queued"
                stopped.append(f"cancelled {len(done.queued)} {what} ({', '.join(done.queued)})")
            raise _stopped(stop, f": {', '.join(stopped)}; {len(done.outcomes)} run(s) had ended{kept_note}; "
                                 f"rerun the others with --retry-failed")
        note = ingest(db_path, out_dir, rows, lock_timeout=lock_timeout)
        if stop:
            raise _stopped(stop, f" as the batch ended: its {len(planned)} run(s) had ended and were recorded; index: {index}")
        return BatchResult(batch_id, index, manifest["runs"], note, manifest["data_warning"])


class _BatchRecord:
    """``batch.json`` and ``index.html`` as the batch goes: rewritten (whole, atomically) when it
    starts, with each of its runs ``running``, and again as each run ends (``ok`` or ``failed``)
    or is stopped (``interrupted``); ``finished_at`` is set at the end."""

    def __init__(self, out_dir: Path, head: dict[str, Any], kept: list[dict[str, Any]], planned: list[dict[str, Any]]):
        self.out_dir = out_dir
        self.head = head
        self.kept = kept
        self.planned = {p["name"]: p for p in planned}
        self.runs = {name: self._stamped(unfinished_outcome(p, "running", None, started_at=head["started_at"]))
                     for name, p in self.planned.items()}

    def _stamped(self, outcome: dict[str, Any]) -> dict[str, Any]:
        stamped = {**outcome, "batch_id": self.head["batch_id"]}
        if outcome["status"] in ("running", "interrupted") or "input_fingerprint" not in outcome:
            # A run that read nothing to the end: the batch's fingerprint, as for every run before.
            stamped["input_fingerprint"] = self.head["input_fingerprint"]
        return stamped

    def manifest(self) -> dict[str, Any]:
        return {**self.head, "runs": self.kept + [self.runs[name] for name in sorted(self.runs)]}

    def write(self) -> dict[str, Any]:
        manifest = self.manifest()
        write_manifest(self.out_dir, manifest)
        write_index(self.out_dir, manifest)
        return manifest

    def started(self, name: str) -> None:
        self.runs[name]["started_at"] = datetime.now(timezone.utc).isoformat()
        self.write()

    def ended(self, outcome: dict[str, Any]) -> None:
        self.runs[outcome["name"]] = self._stamped(outcome)
        self.write()

    def interrupted(self, name: str, why: str) -> None:
        """A run the stop cut short: its half-written notebook is removed (an earlier batch's
        report, if any, stays in place, unlisted)."""
        started_at = self.runs[name]["started_at"]
        self.runs[name] = self._stamped(unfinished_outcome(self.planned[name], "interrupted", why, started_at=started_at))
        partial = partial_notebook(Path(self.planned[name]["run_dir"]), name)
        partial.unlink(missing_ok=True)

    def finish(self) -> dict[str, Any]:
        self.head["finished_at"] = datetime.now(timezone.utc).isoformat()
        self.head["data_warning"] = data_warning(list(self.runs.values()))
        return self.write()


def data_warning(runs: list[dict[str, Any]]) -> str | None:
    """A line when the ended runs of one batch did not all read the same data (a load or replay
    ran during the batch), naming which run read what; None when they agree."""
    ended = [run for run in runs if run["status"] in ("ok", "failed")]
    read: dict[str, list[str]] = {}
    for run in ended:
        if run.get("input_fingerprint") and not run.get("data_changed"):
            read.setdefault(run["input_fingerprint"], []).append(run["name"])
    changed = sorted(run["name"] for run in ended if run.get("data_changed"))
    if len(read) <= 1 and not changed:
        return None
    parts = [f"data {fingerprint[:12]}: {', '.join(sorted(names))}" for fingerprint, names in read.items()]
    if changed:
        parts.append(f"data changed while running: {', '.join(changed)}")
    return ("warning: the runs of this batch read different data (a load or replay ran during it): "
            f"{'; '.join(parts)}; rerun the batch once the data has settled")


def _settled(previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """An earlier manifest whose batch died without recording its end (killed, machine lost):
    its runs still marked ``running`` were interrupted, and --retry-failed reruns them."""
    if previous is None:
        return None
    runs = [{**run, "status": "interrupted",
             "error": f"its batch {previous['batch_id']} ended before this run did (the batch process was killed)"}
            if run["status"] == "running" else run for run in previous["runs"]]
    return {**previous, "runs": runs}


def _stopped(stop: StopRequest, what: str) -> Stopped:
    """The stop of a batch by a signal: one line on stderr, then exit status 128 + signal."""
    stopped = Stopped(stop.signum, f"crm-lab batch: stopped by {stop.name}{what}")
    print(stopped.message, file=sys.stderr, flush=True)
    return stopped


def ingest_only(out_dir: str | os.PathLike, db_path: str | os.PathLike = DEFAULT_DB) -> str:
    """Write a batch's results that were kept on disk because the database was busy.

    ``out_dir`` is a batch's output folder (``reports/<pipeline>``): refused with a message when
    it does not exist or holds no batch output; a folder whose batch was recorded when it ran
    has nothing to ingest, and says so."""
    require_database(db_path)  # as every command that reads data: a missing database first
    folder = Path(out_dir)
    example = "name a batch's output folder, e.g. reports/weekly"
    if not folder.exists():
        raise InvalidArgument(f"--ingest {out_dir}: no such folder; {example}")
    if not folder.is_dir():
        raise InvalidArgument(f"--ingest {out_dir}: not a folder; {example}")
    folder = folder.resolve()
    manifest = read_manifest(folder)
    if not (folder / PENDING).exists():
        if manifest is None:
            raise InvalidArgument(
                f"--ingest {out_dir}: holds no batch output (no batch.json or {PENDING}); {example}"
            )
        return (f"nothing to ingest: {out_dir} has no pending ledger ({PENDING}); its batch "
                f"{manifest['batch_id']} was recorded in {manifest.get('db_path', 'its database')} when it ran")
    return ingest(Path(db_path).resolve(), folder, [])


def _stale_reason(record: dict[str, Any], parameters: dict[str, Any], fingerprint: str) -> str | None:
    """Why a kept outcome no longer shows what this batch would: None when it still does (or,
    for a record from before fingerprints were kept, when that cannot be told)."""
    before = record["parameters"]
    if before.get("db_path") != parameters.get("db_path"):
        return f"it ran on another database ({before.get('db_path')})"
    # results_dir is the batch's own (one folder per batch), not the spec's.
    changed = sorted(name for name in before.keys() | parameters.keys()
                     if name != "results_dir" and before.get(name) != parameters.get(name))
    if changed:
        return f"the spec gives this run other parameters now ({', '.join(changed)})"
    if record.get("data_changed"):
        return "the data changed while it ran"
    if record.get("input_fingerprint", fingerprint) != fingerprint:
        return "the database's data changed since it ran"
    return None


def _select(spec: PipelineSpec, only: list[str] | None, retry_failed: bool, previous: dict | None) -> list[RunSpec]:
    runs = list(spec.runs)
    if only:
        runs = [run for run in runs if any(fnmatch.fnmatchcase(run.name, pattern) for pattern in only)]
        if not runs:
            raise SpecError(f"--only {' '.join(only)} matches no run of {spec.name} (runs: {', '.join(r.name for r in spec.runs)})")
    if retry_failed:
        if previous is None:
            raise SpecError(f"--retry-failed: no previous batch in {spec.output}")
        failed = {run["name"] for run in previous["runs"] if run["status"] != "ok"}
        runs = [run for run in runs if run.name in failed]
    return runs


def _with_batch_parameters(run: RunSpec, spec: PipelineSpec, db_path: Path, out_dir: Path, batch_id: str) -> dict[str, Any]:
    declared = spec.declared[str(run.notebook)]
    parameters = dict(run.parameters)
    if "db_path" in declared:
        parameters.setdefault("db_path", str(db_path))
    run_dir = out_dir / run.name
    if "results_dir" in declared:
        # A folder per batch: a rerun's results never mix with files an earlier run left.
        parameters["results_dir"] = str(run_dir / "results" / batch_id)
    return {
        "name": run.name,
        "notebook": str(run.notebook.resolve()),
        "parameters": parameters,
        "run_dir": str(run_dir),
        "timeout_s": run.timeout_s,
        "cwd": str(Path.cwd()),
        "db_path": str(db_path),  # whose data the run's fingerprint checks
        # A run stops when its batch no longer holds the folder (a Dask worker's run outlives a stop).
        "batch_lock": str(out_dir / LOCK_FILE),
        "batch_id": batch_id,
    }


def _execute(planned: list[dict[str, Any]], jobs: int, client, stop: StopRequest, *,
             started: Callable[[str], None], finished: Callable[[dict[str, Any]], None]) -> PoolOutcome:
    """Run the planned notebooks on ``client`` (a Dask client) or else the local process pool,
    until they have all ended or ``stop`` is set; ``started(name)`` when a worker starts a run
    (local pool only), ``finished(outcome)`` as each ends."""
    if not planned:
        return PoolOutcome()
    progress = _Progress(len(planned))

    def ended(outcome: dict[str, Any]) -> None:
        finished(progress.done(outcome))

    try:
        if client is None:
            pool = WorkerPool(min(jobs, len(planned)))
            try:
                return pool.run(planned, should_stop=lambda: bool(stop), started=started, finished=ended)
            except BaseException:
                pool.stop()  # no worker outlives the batch, whatever stopped it
                raise
        return _execute_on_dask(planned, client, stop, ended)
    finally:
        progress.close()


def _execute_on_dask(planned: list[dict[str, Any]], client, stop: StopRequest,
                     ended: Callable[[dict[str, Any]], None]) -> PoolOutcome:
    futures = {client.submit(execute_run, pure=False, key=f"crm-lab-{p['name']}-{os.getpid()}", **p): p for p in planned}
    pending = set(futures)
    result = PoolOutcome()
    while pending:
        if stop:
            # Dask tells no queued task from a running one: all are cancelled; a notebook already
            # running on a worker stops by itself once the batch lets go of its folder's lock.
            client.cancel(list(pending), force=True)
            result.queued = sorted(futures[f]["name"] for f in pending)
            return result
        for future in [f for f in pending if f.done()]:
            pending.discard(future)
            try:
                outcome = future.result().to_dict()
            except Exception as error:  # a lost worker: the run failed, the others go on
                outcome = unfinished_outcome(futures[future], "failed", f"{type(error).__name__}: {error}")
            result.outcomes.append(outcome)
            ended(outcome)
        time.sleep(0.2)
    return result


def _scheduler_timeout(given: float | None) -> float:
    if given is not None:
        return float(given)
    text = os.environ.get("CRM_LAB_SCHEDULER_TIMEOUT")
    if not text:
        return SCHEDULER_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SchedulerError(f"CRM_LAB_SCHEDULER_TIMEOUT must be a number of seconds > 0, got {text!r}")
    return value


def connect_scheduler(address: str, timeout: float | None = None):
    """A :class:`distributed.Client` on ``address`` with at least one worker, or
    :class:`SchedulerError` saying what to do, within ``timeout`` seconds each for the connection
    and for a worker."""
    from distributed import Client
    from distributed.comm import get_address_host_port, parse_address
    from distributed.comm.registry import get_backend

    seconds = _scheduler_timeout(timeout)
    local = "or leave out --scheduler to run on this machine's process pool (--jobs)"
    # ``address`` as given (not a resolved form), so the user recognises it.
    try:
        scheme, _ = parse_address(address, strict=False)
        get_backend(scheme)
        if scheme != "inproc":  # an in-process scheduler's address has no port
            get_address_host_port(address)
    except ValueError as error:
        raise SchedulerError(
            f"--scheduler {address}: not a Dask scheduler address ({error}); give tcp://HOST:PORT; {local}"
        ) from None
    try:
        client = Client(address, timeout=seconds)
    except OSError:
        raise SchedulerError(
            f"cannot reach the Dask scheduler at {address} (no answer within {seconds:g} s): check the address, or "
            f"start the scheduler (`dask scheduler`) and a worker (`dask worker {address}`); {local}"
        ) from None
    try:
        client.wait_for_workers(1, timeout=seconds)
    except (OSError, TimeoutError):
        client.close()
        raise SchedulerError(
            f"the Dask scheduler at {address} has no worker (none joined within {seconds:g} s): start one with "
            f"`dask worker {address}`; {local}"
        ) from None
    return client


class _Progress:
    """A progress bar on a terminal; one line per finished run in a log (a bar would garble it)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0
        self.bar = tqdm(total=total, unit="run", file=sys.stderr) if sys.stderr.isatty() else None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def done(self, outcome: dict[str, Any]) -> dict[str, Any]:
        self.finished += 1
        mark = "ok    " if outcome["status"] == "ok" else "FAILED"
        detail = f" ({outcome['error']})" if outcome["error"] else ""
        line = f"[{self.finished}/{self.total}] {mark} {outcome['name']} in {outcome['seconds']:.1f} s{detail}"
        if self.bar is None:
            print(line, file=sys.stderr, flush=True)
        else:
            self.bar.write(line)
            self.bar.update(1)
        return outcome
