"""The lock error says who holds the file: a reader (an open notebook workbench) or a writer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crm_lab.db import connect, locked_message
from crm_lab.errors import DatabaseLockedError


def _hold(db: Path, read_only: bool) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
         "print('holding', flush=True); time.sleep(30)", str(db), "ro" if read_only else "rw"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "crm.duckdb"
    duckdb.connect(str(path)).close()
    return path


def _locked(db: Path, *, holder_reads: bool, read_only: bool) -> tuple[str, int]:
    holder = _hold(db, holder_reads)
    try:
        with pytest.raises(DatabaseLockedError) as caught:
            connect(db, read_only=read_only, lock_timeout=0.2)
    finally:
        holder.kill()
        holder.wait()
    return str(caught.value), holder.pid


def test_a_reader_holding_the_file_is_named_as_a_reader(db):
    message, pid = _locked(db, holder_reads=True, read_only=False)
    assert message == (
        f"database {db} is locked by process {pid} (waited 0.2 s). That process has it open read-only "
        "(a notebook's workbench, a `crm-lab sql` or dashboard session, or a DuckDB shell), and a writer "
        "needs the file to itself: close that session (`wb.close()` in a notebook), or raise "
        "CRM_LAB_LOCK_TIMEOUT to wait longer."
    )


@pytest.mark.parametrize("read_only", [True, False], ids=["reader waits", "writer waits"])
def test_a_writer_holding_the_file_is_named_as_a_writer(db, read_only):
    message, pid = _locked(db, holder_reads=False, read_only=read_only)
    assert message == (
        f"database {db} is locked by process {pid} (waited 0.2 s). Close the other writer (a running "
        "load/replay/batch or engine command, or a notebook or shell with a read-write connection), or "
        "raise CRM_LAB_LOCK_TIMEOUT to wait longer."
    )


def test_a_lock_error_that_names_no_holder_covers_both_cases():
    assert locked_message(Path("x.duckdb"), "IO Error: Could not set lock on file", 30) == (
        "database x.duckdb is locked by another process (waited 30 s). Another process has the database "
        "open (a notebook or shell, or a running load/replay/batch): close it, or raise "
        "CRM_LAB_LOCK_TIMEOUT to wait longer."
    )
