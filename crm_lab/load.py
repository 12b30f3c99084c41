"""``crm-lab load``: export files into the workbench database, atomically and idempotently.

One transaction per load: every file of the load lands, or nothing does (a process killed
mid-load leaves the database as it was). Loading the same files again changes nothing: entity
rows upsert by key, events dedupe by (company_id, event_id). Rows that cannot be read are kept in
``load_rejects`` with file, line, column, value and reason; the load itself is recorded in
``load_runs``."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from crm_lab import __version__
from crm_lab.contract import EVENT_TABLE
from crm_lab.db import DEFAULT_DB, transaction
from crm_lab.errors import LoadError
from crm_lab.ingest_events import ingest
from crm_lab.ingest_events import parse as parse_events
from crm_lab.schema import ensure_schema, input_columns, table_spec
from crm_lab.sources import (
    NO_ROWS,
    InputFile,
    drop_staged,
    fingerprint,
    foreign_export_hint,
    reading,
    resolve_inputs,
    stage_raw,
)
from crm_lab.typing_checks import quote_ident, quote_literal, typed_select

STRICT_EXAMPLES = 10


@dataclass
class FileReport:
    file: str
    table: str
    rows_read: int = 0
    rows_rejected: int = 0
    rows_loaded: int = 0
    rows_unchanged: int = 0  # of rows_loaded, entity rows identical to the ones already stored
    events_duplicate: int = 0
    events_quarantined: int = 0
    ignored_columns: tuple[str, ...] = ()
    empty: str = ""  # what the file has when it has no rows: "a header but no rows", ...


@dataclass
class LoadReport:
    load_id: int
    fingerprint: str
    files: list[FileReport]
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    database: str = ""  # the database loaded into, named last: the default is relative to the working directory

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def events_quarantined(self) -> int:
        return sum(f.events_quarantined for f in self.files)

    @property
    def status(self) -> str:
        return "ok_with_rejects" if self.rows_rejected or self.events_quarantined else "ok"

    def summary(self) -> str:
        """What a person reads after a load: per file, then the totals and where rejects are."""
        # An importer's file may feed several tables (a line each below): count the files once.
        files = len({f.file for f in self.files})
        lines = [f"load {self.load_id}: {files} file(s) in {self.seconds:.2f} s, fingerprint {self.fingerprint[:12]}"]
        for f in self.files:
            if f.empty:
                lines.append(f"  {f.file} -> {f.table}: 0 read: the file is empty ({f.empty})")
                continue
            if f.table == EVENT_TABLE:
                detail = f"{f.rows_loaded} new"
            elif f.rows_unchanged:
                detail = f"{f.rows_loaded - f.rows_unchanged} upserted, {f.rows_unchanged} unchanged"
            else:
                detail = f"{f.rows_loaded} upserted"
            if f.table == EVENT_TABLE:
                detail += f", {f.events_duplicate} already loaded, {f.events_quarantined} quarantined"
            lines.append(f"  {f.file} -> {f.table}: {f.rows_read} read, {detail}, {f.rows_rejected} rejected")
            if f.ignored_columns:
                lines.append(f"    columns not in the contract, ignored: {', '.join(f.ignored_columns)}")
        lines.extend(f"  {note}" for note in self.skipped)
        if self.rows_rejected:
            lines.append(f"{self.rows_rejected} row(s) rejected: SELECT * FROM load_rejects WHERE load_id = {self.load_id}")
        if self.events_quarantined:
            lines.append(
                f"{self.events_quarantined} event(s) quarantined: "
                f"SELECT * FROM events_rejected WHERE load_id = {self.load_id}"
            )
        if self.database:
            lines.append(f"database: {self.database}")
        return "\n".join(lines)


def load(
    db_path: str | os.PathLike = DEFAULT_DB,
    paths: list[str | os.PathLike] | tuple = (),
    *,
    table: str | None = None,
    strict: bool = False,
    lock_timeout: float | None = None,
    inputs: list[InputFile] | None = None,
    settings_files: tuple[str | os.PathLike, ...] = (),
) -> LoadReport:
    """Load export files (CSV, Parquet, JSON Lines) into the workbench database.

    Parameters
    ----------
    db_path : path
        The workbench database; created with the schema when missing.
    paths : list of paths
        Files, or folders whose files are named after contract tables (``deals.csv``,
        ``events.parquet``, ...). Entity tables load before events.
    table : str, optional
        Load every file into this table instead of the one its name says.
    strict : bool
        Fail the whole load, writing nothing, when any row is rejected or event quarantined.
    lock_timeout : float, optional
        Seconds to wait for another process's lock on the database.
    inputs : list of InputFile, optional
        Rows an importer has already converted to the contract (``crm_lab.importers``), in load
        order, instead of ``paths``; rejects name their original export file, line and field.
    settings_files : paths, optional
        Files that shaped ``inputs`` (an importer's mapping and exchange rates): part of the
        fingerprint, so the same export read another way is another input.

    Returns
    -------
    LoadReport
        Per-file counts, the load id and the inputs' fingerprint.

    Raises
    ------
    LoadError
        A file as a whole cannot be loaded (missing, unreadable, 0 bytes, not UTF-8, unknown
        table, missing required column), or ``strict`` and a row was rejected. The database is
        left exactly as it was; one this load created is removed. A file of no rows (a CSV
        header alone) is no error: it loads nothing, and its report's ``empty`` says so.
    """
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    inputs, skipped = (list(inputs), []) if inputs is not None else resolve_inputs(list(paths), table)
    digest = fingerprint(inputs, settings_files)
    created = _missing_paths(Path(db_path))
    opened_new = False
    try:
        with transaction(db_path, lock_timeout=lock_timeout) as con:
            # New: the file was not there, and is still a database of nothing (not one another
            # process made in between).
            opened_new = bool(created) and not con.sql("SELECT 1 FROM duckdb_tables() LIMIT 1").fetchall()
            ensure_schema(con)
            load_id = con.sql("SELECT coalesce(max(load_id), 0) + 1 FROM load_runs").fetchall()[0][0]
            reports = [_load_file(con, load_id, item) for item in inputs]
            _name_export_fields(con, load_id, inputs)
            report = LoadReport(load_id, digest, _one_per_file_and_table(reports), skipped,
                                database=str(Path(db_path).absolute()))
            if strict and report.status != "ok":
                raise LoadError(_strict_message(con, report))
            report.seconds = time.perf_counter() - started
            _record_run(con, report, started_at)
            _fault_point("before_commit")
    except BaseException:
        if opened_new:
            _remove_created(Path(db_path), created)
        raise
    return report


def _missing_paths(db_path: Path) -> list[Path]:
    """What opening ``db_path`` for writing will create: the file, and its folders that do not
    exist yet (innermost first). Empty when the file exists."""
    if db_path.exists():
        return []
    missing = [db_path]
    folder = db_path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_created(db_path: Path, created: list[Path]) -> None:
    """A failed load that created the database leaves no trace: not an empty database (which
    later commands would take for a workbench without tables), its write-ahead log, or the
    folders made for it (only those, and only while they are empty)."""
    for path in (db_path, db_path.with_name(db_path.name + ".wal")):
        path.unlink(missing_ok=True)
    for folder in created[1:]:
        try:
            folder.rmdir()
        except OSError:
            break


def _one_per_file_and_table(reports: list[FileReport]) -> list[FileReport]:
    """One report per (file, table). An importer hands an export file over in parts (the first
    event of each line, then the second, ...); rejects are already counted per (file, table)
    over the whole load, so the last part's count is the file's."""
    merged: dict[tuple[str, str], FileReport] = {}
    for part in reports:
        whole = merged.setdefault((part.file, part.table), replace(part, rows_read=0, rows_loaded=0, rows_unchanged=0,
                                                                   events_duplicate=0, events_quarantined=0))
        whole.rows_read += part.rows_read
        whole.rows_loaded += part.rows_loaded
        whole.rows_unchanged += part.rows_unchanged
        whole.events_duplicate += part.events_duplicate
        whole.events_quarantined += part.events_quarantined
        whole.rows_rejected = max(whole.rows_rejected, part.rows_rejected)
        whole.ignored_columns = tuple(dict.fromkeys(whole.ignored_columns + part.ignored_columns))
    return list(merged.values())


def _load_file(con: duckdb.DuckDBPyConnection, load_id: int, item: InputFile) -> FileReport:
    # A CSV record whose field count is not the header's is a reject like a bad value: which of
    # its values belongs to which column cannot be told, so none of them is loaded.
    # A file of no rows (a CSV header alone: an object an org does not use, a week without
    # activities) loads nothing and says so; its header is still checked.
    staged = stage_raw(con, item, "_raw", lazy=True, ragged="_ragged", empty_ok=True)
    file_columns = staged.columns
    spec = table_spec(item.table)
    targets = input_columns(item.table)
    by_lower = {name.lower(): name for name in file_columns}
    source_names = {c.name: by_lower[c.name] for c in targets if c.name in by_lower}
    missing = [c.name for c in targets if c.required and c.name not in source_names]
    # A JSON Lines file of no records names no columns: there is nothing to check.
    if missing and not (staged.empty and item.fmt == "jsonl"):
        where = "" if item.fmt == "jsonl" else (" line 1" if item.fmt == "csv" else " schema")
        raise LoadError(
            f"{item.name}{where}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} for table {item.table}{foreign_export_hint(file_columns, item.table)}"
        )
    wanted = {c.name for c in targets}
    ignored = tuple(name for name in file_columns if name.lower() not in wanted)
    if staged.empty:
        drop_staged(con, "_raw")
        con.execute("DROP TABLE _ragged")
        return FileReport(item.name, item.table, ignored_columns=ignored, empty=NO_ROWS.get(item.fmt, "no rows"))
    source_types = dict(
        con.sql(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '_raw' AND database_name = 'temp'"
        ).fetchall()
    )
    typed, errors = typed_select(targets, source_names, source_types)
    checked = f"SELECT r._line, {typed}, {errors} AS _errors FROM _raw r"
    # The file is read once, into _checked: rows typed with their rejects in _errors and, for
    # events, the payload parsed in the same pass. Later steps filter on len(_errors) = 0 rather
    # than copying the good rows out: every full copy of a large file costs a pass and its memory.
    with reading(item):
        if item.table == EVENT_TABLE:
            parse_events(con, checked, "_checked")
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS {checked}")
    drop_staged(con, "_raw")
    con.execute(
        f"""INSERT INTO load_rejects
            SELECT {int(load_id)}, {quote_literal(item.name)}, {quote_literal(item.table)}, _line,
                   e.column_name, e.value, e.reason
            FROM (SELECT _line, unnest(_errors) AS e FROM _checked WHERE len(_errors) > 0)
            ORDER BY _line"""
    )
    con.execute(
        f"""INSERT INTO load_rejects
            SELECT {int(load_id)}, {quote_literal(item.name)}, {quote_literal(item.table)}, line, NULL, value, reason
            FROM _ragged ORDER BY line"""
    )
    report = FileReport(item.name, item.table, ignored_columns=ignored)
    report.rows_read = con.sql("SELECT (SELECT count(*) FROM _checked) + (SELECT count(*) FROM _ragged)").fetchall()[0][0]
    con.execute("DROP TABLE _ragged")
    if item.table == EVENT_TABLE:
        counts = ingest(con, load_id, "_checked")
        report.rows_loaded, report.events_duplicate, report.events_quarantined = counts.new, counts.duplicate, counts.quarantined
    else:
        report.rows_loaded, report.rows_unchanged = _upsert(con, load_id, item, spec.key, [c.name for c in spec.columns],
                                                            set(source_names))
    con.execute("DROP TABLE _checked")
    report.rows_rejected = con.sql(
        # An importer may feed several tables from one export file: count this table's rejects only.
        "SELECT count(DISTINCT line) FROM load_rejects WHERE load_id = ? AND file = ? AND table_name = ?",
        params=[load_id, item.name, item.table],
    ).fetchall()[0][0]
    return report


def _name_export_fields(con: duckdb.DuckDBPyConnection, load_id: int, inputs: list[InputFile]) -> None:
    """An imported row's reject names the export's field (``Amount``), not the contract column."""
    for item in inputs:
        for column, source in item.source_columns:
            con.execute(
                "UPDATE load_rejects SET column_name = ? WHERE load_id = ? AND file = ? AND table_name = ? AND column_name = ?",
                [source, load_id, item.name, item.table, column],
            )


def _upsert(con: duckdb.DuckDBPyConnection, load_id: int, item: InputFile, key: tuple[str, ...],
            columns: list[str], carried: set[str]) -> tuple[int, int]:
    """Replace rows with the same key, from the valid rows of ``_checked``; within one file a
    repeated key is a reject naming the first line, so which row wins never depends on the order
    DuckDB happens to read in. A column the file does not have (not in ``carried``) keeps the
    stored row's value: a file of ``account_id, workload_hours`` sets the workload and clears
    nothing, and an import whose export has no such column leaves what another load set.
    Returns the rows written and how many of them were already stored exactly so (a reload of
    the same file writes every row and changes none)."""
    partition = ", ".join(quote_ident(k) for k in key)
    valid = "SELECT * FROM _checked WHERE len(_errors) = 0"
    repeats = con.sql(f"SELECT count(*) <> count(DISTINCT hash({partition})) FROM ({valid})").fetchall()[0][0]
    if repeats:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _keyed AS "
            f"SELECT *, min(_line) OVER (PARTITION BY {partition}) AS _first_line FROM ({valid})"
        )
        con.execute(
            f"""INSERT INTO load_rejects
                SELECT {int(load_id)}, {quote_literal(item.name)}, {quote_literal(item.table)}, _line,
                       {quote_literal(', '.join(key))}, concat_ws(', ', {partition}),
                       'duplicate key: the same ' || {quote_literal(', '.join(key))} || ' is at line ' || _first_line
                FROM _keyed WHERE _line <> _first_line ORDER BY _line"""
        )
        rows = "SELECT * FROM _keyed WHERE _line = _first_line"
    else:
        # No key twice in the file (counting distinct key hashes is cheaper than the window
        # that finds the repeats; a collision only costs the window): every valid row is its
        # key's first.
        rows = valid
    target = quote_ident(item.table)
    column_list = ", ".join(quote_ident(c) for c in columns)
    unchanged = 0
    if con.sql(f"SELECT count(*) FROM {target}").fetchall()[0][0]:
        match = " AND ".join(f"{target}.{quote_ident(k)} = k.{quote_ident(k)}" for k in key)
        kept = [c for c in columns if c not in carried and c not in key]
        if kept:
            # One join, and only for a file that lacks some of the table's columns.
            stored = ", ".join(f"{target}.{quote_ident(c)} AS {quote_ident(c)}" for c in kept)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _kept AS SELECT k.* REPLACE ({stored}) FROM ({rows}) k LEFT JOIN {target} ON {match}"
            )
            rows = "SELECT * FROM _kept"
        # Set semantics: NULLs compare equal, and the rows are unique by key on both sides.
        unchanged = con.sql(
            f"SELECT count(*) FROM (SELECT {column_list} FROM ({rows}) INTERSECT SELECT {column_list} FROM {target})"
        ).fetchall()[0][0]
        con.execute(f"DELETE FROM {target} USING ({rows}) k WHERE {match}")
    con.execute(f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM ({rows}) ORDER BY _line")
    loaded = con.sql(f"SELECT count(*) FROM ({rows})").fetchall()[0][0]
    con.execute("DROP TABLE IF EXISTS _keyed")
    con.execute("DROP TABLE IF EXISTS _kept")
    return loaded, unchanged


def _record_run(con: duckdb.DuckDBPyConnection, report: LoadReport, started_at: datetime) -> None:
    con.execute(
        "INSERT INTO load_runs VALUES (?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        [
            report.load_id,
            started_at,
            report.status,
            list(dict.fromkeys(f.file for f in report.files)),  # an export file may feed several tables
            sorted({f.table for f in report.files}),
            report.rows_read,
            report.rows_read - report.rows_rejected,
            report.rows_rejected,
            sum(f.rows_loaded for f in report.files if f.table == EVENT_TABLE),
            sum(f.events_duplicate for f in report.files),
            report.events_quarantined,
            report.fingerprint,
            __version__,
        ],
    )


def _strict_message(con: duckdb.DuckDBPyConnection, report: LoadReport) -> str:
    examples = con.sql(
        "SELECT file, line, column_name, value, reason FROM load_rejects WHERE load_id = ? ORDER BY file, line LIMIT ?",
        params=[report.load_id, STRICT_EXAMPLES],
    ).fetchall()
    quarantined = con.sql(
        "SELECT event_id, reason FROM events_rejected WHERE load_id = ? AND detected_by = 'load' LIMIT ?",
        params=[report.load_id, STRICT_EXAMPLES],
    ).fetchall()
    lines = [
        f"--strict: {report.rows_rejected} row(s) rejected and {report.events_quarantined} event(s) quarantined; nothing was loaded"
    ]
    lines += [
        # A reject of a whole record (a CSV record with the wrong number of fields) has no column.
        f"  {file} line {line}, column {column} = {value!r}: {reason}" if column is not None
        else f"  {file} line {line}: {reason}: {value!r}"
        for file, line, column, value, reason in examples
    ]
    lines += [f"  event {event_id}: {reason}" for event_id, reason in quarantined]
    return "\n".join(lines)


def _fault_point(name: str) -> None:
    """Crash here when CRM_LAB_FAULT names this point: how the tests prove a load killed before
    its commit leaves the database untouched."""
    if os.environ.get("CRM_LAB_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
