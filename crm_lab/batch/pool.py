"""The local process pool of ``crm-lab batch``: ``jobs`` worker processes (multiprocessing spawn:
papermill changes the working directory while it runs, so threads would not do), each running one
notebook at a time in a kernel of its own.

The batch process hands a worker its next run only when the worker is free, so a stop leaves
nothing queued inside the pool. Stopping (:meth:`WorkerPool.stop`) sends SIGTERM to the workers,
which kill their kernels and exit at once; whatever still lives after a grace period is killed.
Workers also stop by themselves when the batch process is gone (they watch its pid), and a
terminal's Ctrl-C or hang-up reaches only the batch process, which stops them in order."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import psutil

from crm_lab.batch.execute import unfinished_outcome

# Seconds the workers get to kill their kernels and exit before they are killed.
STOP_GRACE_SECONDS = 5.0
# How often a worker checks that the batch process is still there.
PARENT_POLL_SECONDS = 0.5


@dataclass
class _Worker:
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection
    task: dict[str, Any] | None = None  # the run it is executing (execute_run's arguments)

    @property
    def run(self) -> str | None:
        return self.task["name"] if self.task else None


@dataclass
class PoolOutcome:
    """What the pool did: the outcomes of the runs that ended, and when a stop cut it short, the
    runs a worker had started (``running``) and those it had not (``queued``)."""

    outcomes: list[dict[str, Any]] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)


class WorkerPool:
    def __init__(self, size: int) -> None:
        self._context = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = [self._start_worker() for _ in range(size)]

    def _start_worker(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=worker_main, args=(theirs, os.getpid()), name="crm-lab-batch-worker")
        process.start()
        theirs.close()  # the worker holds the only other end: its death reads as EOF here
        return _Worker(process, ours)

    def run(self, planned: list[dict[str, Any]], *, should_stop: Callable[[], bool],
            started: Callable[[str], None] = lambda name: None,
            finished: Callable[[dict[str, Any]], None] = lambda outcome: None,
            poll_seconds: float = 0.2) -> PoolOutcome:
        """Run ``planned`` (``execute_run``'s keyword arguments each) until all ended or
        ``should_stop()`` (polled every ``poll_seconds``) turns true; then stop the workers."""
        queue = deque(planned)
        result = PoolOutcome()
        while queue or any(w.run for w in self.workers):
            if should_stop():
                result.running = sorted(w.run for w in self.workers if w.run)
                result.queued = [p["name"] for p in queue]
                self.stop()
                return result
            for worker in self.workers:
                if worker.run is None and queue:
                    worker.task = queue.popleft()
                    try:
                        worker.conn.send(worker.task)
                    except OSError:  # the worker died while idle: the next loop reports the run
                        pass
            busy = {w.conn: w for w in self.workers if w.run}
            for conn in wait(list(busy), timeout=poll_seconds):
                worker = busy[conn]
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    result.outcomes.append(self._replace_dead(worker))
                    finished(result.outcomes[-1])
                    continue
                if kind == "started":
                    started(payload)
                else:
                    worker.task = None
                    result.outcomes.append(payload)
                    finished(payload)
        self.close()
        return result

    def _replace_dead(self, worker: _Worker) -> dict[str, Any]:
        """A worker died under a run (killed from outside, out of memory): that run failed; a
        fresh worker takes its place."""
        worker.process.join(timeout=STOP_GRACE_SECONDS)
        code = worker.process.exitcode
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
        task = worker.task
        worker.conn.close()
        self.workers[self.workers.index(worker)] = self._start_worker()
        return unfinished_outcome(task, "failed", f"the worker process running it died ({how})")

    def close(self) -> None:
        """Let idle workers exit (after the last run), killing any that do not."""
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self.workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to every worker (each kills its kernel and exits); after ``grace`` seconds,
        SIGKILL to every worker and kernel still alive."""
        kernels: list[psutil.Process] = []
        for worker in self.workers:
            try:
                kernels += psutil.Process(worker.process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + grace
        for worker in self.workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        _, alive = psutil.wait_procs(kernels, timeout=max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        for process in alive:
            _kill(process)


def _kill(process: psutil.Process) -> None:
    try:
        process.kill()
    except psutil.NoSuchProcess:
        pass


# --- in the worker process -------------------------------------------------------------------------


def worker_main(conn: Connection, parent_pid: int) -> None:
    """A worker's loop: run what the batch process sends (``None``: exit), reporting each run's
    start and outcome. Exits, killing its kernel, on SIGTERM or when the batch process is gone."""
    # A group of its own: a terminal's Ctrl-C or hang-up goes to the batch process, which stops the
    # workers in order; it must not kill a worker half-way (its kernel would live on).
    os.setpgrp()
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, _frame: _exit_now(128 + signum))
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="crm-lab-parent-watch").start()

    from crm_lab.batch.execute import execute_run

    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(("started", task["name"]))
        conn.send(("done", execute_run(**task).to_dict()))


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    _exit_now(1)


def _exit_now(status: int) -> None:
    """Kill this worker's kernels (and what they started) and exit at once: no queued run, no
    report file written after the batch stopped."""
    from crm_lab.batch.execute import kill_kernels

    kill_kernels()
    os._exit(status)
