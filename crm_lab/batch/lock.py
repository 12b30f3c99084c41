"""One batch at a time per output folder: ``<output>/.batch.lock``, held with ``flock`` for the
whole batch (the kernel releases it when the process ends, however it ends) and naming its
holder (pid, host, batch id, start), so a second batch into the same folder is refused with a
message saying which batch is writing there."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from crm_lab.errors import CrmLabError

LOCK_FILE = ".batch.lock"


class BatchBusyError(CrmLabError):
    """Another batch is writing into the same output folder."""


@contextmanager
def output_lock(out_dir: Path, batch_id: str) -> Iterator[Path]:
    """Hold ``out_dir``'s batch lock for the block, or raise :class:`BatchBusyError` at once."""
    path = out_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise BatchBusyError(_busy_message(out_dir, holder)) from None
        # The holder before us may have removed the file between our open and our lock: then we
        # hold a lock on a file no one else sees, and start again on the one now there.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "batch_id": batch_id,
                  "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield path
    finally:
        try:
            path.unlink()  # before unlocking: a batch waiting on this file then starts again
        except FileNotFoundError:
            pass
        os.close(fd)


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, OSError):
        return {}


def _busy_message(out_dir: Path, holder: dict) -> str:
    pid = holder.get("pid")
    who = f"batch {holder['batch_id']} (pid {pid}" if holder.get("batch_id") else f"another batch (pid {pid or 'unknown'}"
    if holder.get("host") and holder["host"] != socket.gethostname():
        who += f" on {holder['host']}"
    if holder.get("started_at"):
        who += f", started {holder['started_at']}"
    stop = f"stop it (kill {pid}), " if pid else ""
    return (f"{who}) is writing into {out_dir}: wait for it to end, {stop}or write this batch elsewhere with --out DIR")
