"""Connections to the workbench database.

DuckDB allows one read-write process per file, or any number of read-only ones, and a writer
blocks even read-only opens. So readers open read-only, writers hold the file only for the
duration of one write, and both wait a bounded time for a lock held by someone else.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from crm_lab.errors import CrmLabError, DatabaseLockedError, DatabaseMissingError

T = TypeVar("T")
DEFAULT_DB = Path("data/crm.duckdb")
DEFAULT_LOCK_TIMEOUT_S = 30.0
_LOCK_MESSAGE = re.compile(r"lock", re.IGNORECASE)
_PID = re.compile(r"PID (\d+)")
# DuckDB adds this to a read-write open's lock error when the holders only read.
_HOLDER_READS = re.compile(r"would be able to open this database in read-only mode", re.IGNORECASE)
# Every DuckDB file starts with an 8-byte checksum and then this magic.
_MAGIC_OFFSET, _MAGIC = 8, b"DUCK"


class NotADatabaseError(CrmLabError):
    """The path given as the database is a directory or a file DuckDB did not write."""


class DatabaseNotWritableError(CrmLabError):
    """A writer's database, or the folder that holds it (DuckDB writes its WAL beside the file), cannot be written."""


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`DatabaseNotWritableError` when a write to ``path`` would fail for want of
    permission or on a read-only file system: called before the work whose results are to be
    stored, so that a forecast does not simulate for minutes and then fail to store. A missing
    file is judged by the nearest folder that exists (a writer creates the rest)."""
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    for target in (path, folder) if path.exists() else (folder,):
        if not os.access(target, os.W_OK):
            what = "database" if target == path else "folder"
            raise DatabaseNotWritableError(
                f"database {path} cannot be written: its {what} {target} is read-only (permissions or a read-only "
                "file system; DuckDB also writes a .wal file beside the database): copy it somewhere writable and "
                "pass --db, or fix the permissions"
            )


def check_database_file(path: str | os.PathLike) -> None:
    """Raise :class:`NotADatabaseError` when ``path`` exists but is a directory or not a DuckDB
    database file; a missing path passes (whether it may be created is the caller's choice).

    The file's header is read rather than DuckDB's errors trusted, because DuckDB 2.0 opens an
    existing CSV, Parquet or JSON file read-write without complaint: as an empty in-memory
    database with a view over the file, which a writer would fill and then silently discard."""
    path = Path(path)
    if path.is_dir():
        raise NotADatabaseError(
            f"database {path} is a directory, not a DuckDB database file: "
            f"pass the database file, e.g. --db {path / DEFAULT_DB.name}"
        )
    try:
        with path.open("rb") as file:
            header = file.read(_MAGIC_OFFSET + len(_MAGIC))
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable (permissions, ...): DuckDB's own error says why
    if header[_MAGIC_OFFSET:] != _MAGIC:
        what = "an empty file, not a DuckDB database file" if not header else "not a DuckDB database file"
        raise NotADatabaseError(
            f"database {path} is {what}: pass the workbench database (default {DEFAULT_DB}); "
            f"to read an export into one, run `crm-lab load --db DB {path}`"
        )


def missing_database(path: str | os.PathLike) -> DatabaseMissingError:
    """The error for a database that must exist and does not, with how to build it."""
    return DatabaseMissingError(
        f"database {path} does not exist: build it with `crm-lab demo` or `crm-lab load --db {path} FILES`"
    )


def require_database(path: str | os.PathLike) -> None:
    """Refuse a path that is not an existing DuckDB database, creating nothing: for commands
    that need loaded data, which a new empty file would only hide."""
    check_database_file(path)
    if not Path(path).exists():
        raise missing_database(path)


def table_exists(con: duckdb.DuckDBPyConnection, table: str, *, database: str | None = None) -> bool:
    """Whether ``table`` is a table in the main schema of ``database`` (an attached name;
    default the connection's current database)."""
    return con.sql(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = coalesce($database, current_database()) "
        "AND schema_name = 'main' AND table_name = $table",
        params={"database": database, "table": table},
    ).fetchall()[0][0] > 0


def lock_timeout_s() -> float:
    """Seconds to wait for another process's lock: ``CRM_LAB_LOCK_TIMEOUT`` or 30."""
    return float(os.environ.get("CRM_LAB_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT_S))


def connect(
    db_path: str | os.PathLike = DEFAULT_DB,
    *,
    read_only: bool = True,
    lock_timeout: float | None = None,
    create: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the workbench database with UTC session time.

    Parameters
    ----------
    db_path : path
        The DuckDB file. A read-only open of a missing file is an error; a writer creates it.
    read_only : bool
        Readers should leave this True so that many of them can share the file.
    lock_timeout : float, optional
        Seconds to keep retrying while another process holds the file (default
        ``CRM_LAB_LOCK_TIMEOUT`` or 30). Then :class:`DatabaseLockedError` names the file,
        the holder's PID when DuckDB reports it, and what to do.
    create : bool
        Whether a writer may create a missing file (and its folder). Only the commands that
        build a database (load, demo) should; the others refuse like a reader does.

    Raises
    ------
    DatabaseMissingError
        The file does not exist and may not be created.
    NotADatabaseError
        The path is a directory or a file that is not a DuckDB database.
    """
    path = Path(db_path)
    check_database_file(path)
    if (read_only or not create) and not path.exists():
        raise missing_database(path)
    if not read_only:
        check_writable(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    con = retry_while_locked(lambda: duckdb.connect(str(path), read_only=read_only), path, lock_timeout)
    # TimeZone cannot go in connect(config=...): the ICU extension loads only after the config.
    con.execute("SET TimeZone = 'UTC'")
    return con


def locked_message(path: str | os.PathLike, duckdb_message: str, waited: float) -> str:
    """What to tell a user whose open of ``path`` found it locked, from DuckDB's lock error.

    DuckDB refuses a read-write open while readers hold the file, adding that a read-only open
    would work: then the holder is a reader (a notebook's workbench, ``crm-lab sql``, a shell).
    Without that hint the holder is a writer (a read-only open fails only against a writer)."""
    holder = _PID.search(duckdb_message)
    who = f"process {holder.group(1)}" if holder else "another process"
    head = f"database {path} is locked by {who} (waited {waited:g} s). "
    tail = "or raise CRM_LAB_LOCK_TIMEOUT to wait longer."
    if _HOLDER_READS.search(duckdb_message):
        return head + (
            "That process has it open read-only (a notebook's workbench, a `crm-lab sql` or dashboard "
            "session, or a DuckDB shell), and a writer needs the file to itself: close that session "
            f"(`wb.close()` in a notebook), {tail}"
        )
    if holder:
        return head + (
            "Close the other writer (a running load/replay/batch or engine command, or a notebook or shell "
            f"with a read-write connection), {tail}"
        )
    return head + (
        "Another process has the database open (a notebook or shell, or a running load/replay/batch): "
        f"close it, {tail}"
    )


def retry_while_locked(open_database: Callable[[], T], path: Path, lock_timeout: float | None = None) -> T:
    """Call ``open_database`` until no other process holds ``path``'s lock, for at most
    ``lock_timeout`` seconds (default ``CRM_LAB_LOCK_TIMEOUT`` or 30), then raise
    :class:`DatabaseLockedError` naming the file, the holder and what to do."""
    timeout = lock_timeout_s() if lock_timeout is None else lock_timeout
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return open_database()
        except duckdb.Error as error:
            # DuckDB's words for a directory or a foreign file vary by case ("Is a directory",
            # "Cannot launch in-memory database in read-only mode!"): the file itself tells.
            check_database_file(path)
            if not (isinstance(error, duckdb.IOException) and _LOCK_MESSAGE.search(str(error))):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseLockedError(locked_message(path, str(error), timeout)) from error
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def reading(db_path: str | os.PathLike = DEFAULT_DB, **kwargs: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed on exit."""
    con = connect(db_path, read_only=True, **kwargs)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def writing(db_path: str | os.PathLike = DEFAULT_DB, **kwargs: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection held only for the ``with`` block, so readers wait as little as possible."""
    con = connect(db_path, read_only=False, **kwargs)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(db_path: str | os.PathLike = DEFAULT_DB, **kwargs: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write connection inside one transaction: committed when the block ends, rolled back (and
    the error re-raised) when it fails, so a failed write leaves the database as it was."""
    with writing(db_path, **kwargs) as con:
        con.begin()
        try:
            yield con
            con.commit()
        except BaseException:
            con.rollback()
            raise


def fetch_all(con: duckdb.DuckDBPyConnection, query: str, params: Sequence | dict | None = None) -> list[tuple]:
    """All rows of a query, with bound parameters."""
    return con.sql(query, params=params).fetchall()


def fetch_value(con: duckdb.DuckDBPyConnection, query: str, params: Sequence | dict | None = None) -> Any:
    """The first column of the first row, or None when there is no row."""
    rows = con.sql(query, params=params).fetchmany(1)
    return rows[0][0] if rows else None
