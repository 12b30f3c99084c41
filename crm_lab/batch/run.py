"""``crm-lab batch``: run a pipeline spec's notebooks in parallel and collect the results."""

from __future__ import annotations

import fnmatch
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from crm_lab import __version__
from crm_lab.batch.execute import execute_run
from crm_lab.batch.ledger import ingest, ledger_rows, read_manifest, write_manifest
from crm_lab.batch.report_index import write_index
from crm_lab.batch.spec import PipelineSpec, RunSpec, SpecError, load_spec
from crm_lab.db import DEFAULT_DB, reading
from crm_lab.runs import input_fingerprint, new_run_id


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    index: Path
    runs: list[dict[str, Any]]
    ledger_note: str

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
    """
    if jobs < 1:
        raise SpecError(f"jobs must be >= 1, got {jobs}")
    spec = load_spec(spec_path)
    out_dir = Path(output or spec.output).resolve()
    previous = read_manifest(out_dir)
    selected = _select(spec, only, retry_failed, previous)
    db_path = Path(db_path).resolve()
    with reading(db_path) as con:
        fingerprint = input_fingerprint(con)
    batch_id = new_run_id(f"batch-{spec.name}")
    out_dir.mkdir(parents=True, exist_ok=True)
    planned = [_with_batch_parameters(run, spec, db_path, out_dir) for run in selected]
    outcomes = _execute(planned, out_dir, jobs, scheduler)
    for outcome in outcomes:
        outcome["batch_id"] = batch_id
        outcome["input_fingerprint"] = fingerprint
    # Runs of the spec not run this time (--only, --retry-failed) keep their last outcome, marked
    # stale when the spec now gives them other parameters or the data changed since.
    rerun = {o["name"] for o in outcomes}
    current = {run.name: _with_batch_parameters(run, spec, db_path, out_dir)["parameters"] for run in spec.runs}
    kept = [
        {**r, "stale": _stale_reason(r, current[r["name"]], fingerprint)}
        for r in (previous or {}).get("runs", [])
        if r["name"] in current and r["name"] not in rerun
    ]
    manifest = {
        "pipeline": spec.name,
        "spec": str(spec.path),
        "batch_id": batch_id,
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "db_path": str(db_path),
        "input_fingerprint": fingerprint,
        "crm_lab_version": __version__,
        "runs": kept + outcomes,
    }
    write_manifest(out_dir, manifest)
    index = write_index(out_dir, manifest)
    note = ingest(db_path, out_dir, ledger_rows(manifest, batch_id), lock_timeout=lock_timeout)
    return BatchResult(batch_id, index, manifest["runs"], note)


def ingest_only(out_dir: str | os.PathLike, db_path: str | os.PathLike = DEFAULT_DB) -> str:
    """Write a batch's results that were kept on disk because the database was busy."""
    return ingest(Path(db_path).resolve(), Path(out_dir).resolve(), [])


def _stale_reason(record: dict[str, Any], parameters: dict[str, Any], fingerprint: str) -> str | None:
    """Why a kept outcome no longer shows what this batch would: None when it still does (or,
    for a record from before fingerprints were kept, when that cannot be told)."""
    if record["parameters"] != parameters:
        return "the spec gives this run other parameters now"
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


def _with_batch_parameters(run: RunSpec, spec: PipelineSpec, db_path: Path, out_dir: Path) -> dict[str, Any]:
    declared = spec.declared[str(run.notebook)]
    parameters = dict(run.parameters)
    if "db_path" in declared:
        parameters.setdefault("db_path", str(db_path))
    run_dir = out_dir / run.name
    if "results_dir" in declared:
        parameters["results_dir"] = str(run_dir / "results")
    return {
        "name": run.name,
        "notebook": str(run.notebook.resolve()),
        "parameters": parameters,
        "run_dir": str(run_dir),
        "timeout_s": run.timeout_s,
        "cwd": str(Path.cwd()),
    }


def _execute(planned: list[dict[str, Any]], out_dir: Path, jobs: int, scheduler: str | None) -> list[dict[str, Any]]:
    if not planned:
        return []
    progress = _Progress(len(planned))
    outcomes = []
    if scheduler:
        from distributed import Client, as_completed as dask_completed

        with Client(scheduler) as client:
            futures = [client.submit(execute_run, pure=False, key=f"crm-lab-{p['name']}-{os.getpid()}", **p) for p in planned]
            for future in dask_completed(futures):
                outcomes.append(progress.done(future.result().to_dict()))
    else:
        # Processes, not threads: papermill changes the working directory while it runs.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(planned)), mp_context=context) as pool:
            futures = [pool.submit(execute_run, **p) for p in planned]
            for future in as_completed(futures):
                outcomes.append(progress.done(future.result().to_dict()))
    return sorted(outcomes, key=lambda o: o["name"])


class _Progress:
    """A progress bar on a terminal; one line per finished run in a log (a bar would garble it)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0
        self.bar = tqdm(total=total, unit="run", file=sys.stderr) if sys.stderr.isatty() else None

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
            if self.finished == self.total:
                self.bar.close()
        return outcome
