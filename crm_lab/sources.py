"""Input files for a load: which table each file feeds, its format, a fingerprint, and its rows as
a raw DuckDB temp table with 1-based line numbers. Problems with a file as a whole (missing,
unreadable, 0 bytes, not UTF-8, unknown table, missing required column) raise LoadError naming
it; a file of no rows (a CSV header alone) is refused only where the caller needs rows."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from crm_lab.contract import LOADABLE_TABLES
from crm_lab.errors import LoadError
from crm_lab.file_lines import lines_at, long_line, read_chunks, record_start_lines
from crm_lab.schema import input_columns, table_spec
from crm_lab.typing_checks import quote_ident

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class InputFile:
    """One file feeding one table. An importer (``crm_lab.importers``) passes rows it has already
    converted: ``stage`` then fills the raw temp table instead of reading ``path`` (which stays
    the original export file, so rejects and the fingerprint name it), and ``source_columns``
    says which export field each contract column came from, for the reject messages."""

    path: Path
    table: str
    fmt: str
    stage: Callable[["duckdb.DuckDBPyConnection", "InputFile", str], None] | None = field(default=None, compare=False)
    source_columns: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return str(self.path)


def table_for(path: Path) -> str | None:
    """``deals.csv`` and ``Deals.part-2.parquet`` both feed ``deals``."""
    stem = path.name.split(".", 1)[0].lower()
    return stem if stem in LOADABLE_TABLES else None


def resolve_inputs(paths: list[str | os.PathLike], table: str | None = None) -> tuple[list[InputFile], list[str]]:
    """Expand folders, decide each file's table and format, and check that each is readable and
    non-empty. Returns the inputs in load order (entity tables before events) and notes on files
    in folders that were skipped because no contract table has their name."""
    if not paths:
        raise LoadError("nothing to load: name one or more files or folders")
    if table is not None and table not in LOADABLE_TABLES:
        raise LoadError(f"unknown table {table!r} given with --table: expected one of {', '.join(LOADABLE_TABLES)}")
    inputs: list[InputFile] = []
    skipped: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.suffix.lower() not in FORMATS or child.name.startswith("."):
                    continue
                child_table = table or table_for(child)
                if child_table is None:
                    skipped.append(f"{child}: no contract table is named {child.name.split('.', 1)[0]!r}, skipped")
                    continue
                inputs.append(_checked(child, child_table))
        else:
            inferred = table or table_for(path)
            if inferred is None and path.exists():
                stem = path.name.split(".", 1)[0]
                hint = (
                    f"; {path.name} is a Salesforce object's file: import the export's folder with --format salesforce"
                    if stem.lower() in SALESFORCE_OBJECTS else ""
                )
                raise LoadError(
                    f"{path}: unknown table {stem!r}: name the file after one of "
                    f"{', '.join(LOADABLE_TABLES)}, or pass --table{hint}"
                )
            inputs.append(_checked(path, inferred or ""))
    if not inputs:
        salesforce = [str(Path(p)) for p in paths if _looks_like_salesforce(Path(p))]
        hint = (
            f"; {', '.join(salesforce)} looks like a Salesforce export (it has Opportunity.csv): "
            "load it with --format salesforce"
            if salesforce else ""
        )
        raise LoadError(f"no loadable files found in {', '.join(map(str, paths))}{hint}")
    order = {name: i for i, name in enumerate(LOADABLE_TABLES)}
    inputs.sort(key=lambda f: order[f.table])  # stable: files of one table keep the order given
    return inputs, skipped


# The objects of a Salesforce export (docs/IMPORT.md), by their file names, lower case.
SALESFORCE_OBJECTS = {
    name.lower()
    for name in ("Opportunity", "OpportunityHistory", "OpportunityFieldHistory", "Lead", "LeadHistory",
                 "Account", "User", "Task", "Event")
}
# Column names that only a foreign export's header has (lower case).
HUBSPOT_COLUMNS = {"record id", "deal name", "deal stage", "deal owner", "pipeline", "contact owner",
                   "lifecycle stage", "lead status", "associated company ids", "associated deal ids"}
SALESFORCE_COLUMNS = {"stagename", "opportunityid", "leadid", "ownerid", "accountid", "whoid", "whatid",
                      "isdeleted", "createddate", "lastmodifieddate", "createdbyid"}


def _looks_like_salesforce(folder: Path) -> bool:
    return folder.is_dir() and any(child.name.lower() == "opportunity.csv" for child in folder.iterdir())


def foreign_export_hint(columns: Sequence[str], table: str) -> str:
    """What to add to a refusal for missing columns when the header is another CRM's: the way to
    import it. Empty when the file looks native (it has a column of the table's)."""
    lowered = {name.strip().lower() for name in columns}
    if not lowered:
        return ""
    if "record id" in lowered or len(lowered & HUBSPOT_COLUMNS) >= 2:
        return "; this looks like a HubSpot export: import it with --mapping FILE (see docs/IMPORT.md)"
    if "id" in lowered and len(lowered & SALESFORCE_COLUMNS) >= 2:
        return "; this looks like a Salesforce export: import its folder with --format salesforce (see docs/IMPORT.md)"
    # Another CRM's: none of its columns has a name of this table's.
    if table in ("deals", "leads") and not lowered & {c.name for c in table_spec(table).columns}:
        return (
            f"; if this is another CRM's {table} export, import it with --mapping FILE "
            "saying which column is which (see docs/IMPORT.md)"
        )
    return ""


def _checked(path: Path, table: str) -> InputFile:
    if not path.exists():
        raise LoadError(f"{path}: no such file")
    if not path.is_file():
        raise LoadError(f"{path}: not a regular file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(f"{path}: unknown file format {path.suffix!r}: expected .csv, .parquet, .jsonl or .ndjson")
    if not os.access(path, os.R_OK):
        raise LoadError(f"{path}: cannot be read (permission denied)")
    if path.stat().st_size == 0 and fmt != "jsonl":  # JSON Lines has no header: no bytes is no records
        raise LoadError(_empty_message(path, fmt))
    return InputFile(path, table, fmt)


def _empty_message(path: Path, fmt: str) -> str:
    what = "a CSV file starts with its header row" if fmt == "csv" else "not a Parquet file"
    return f"{path}: file is empty (0 bytes): {what}"


def fingerprint(inputs: list[InputFile], settings_files: Sequence[str | os.PathLike] = ()) -> str:
    """sha256 over each file's table, name and bytes, in load order, then over the settings files
    (an importer's mapping and rates) that turned a foreign export into these inputs."""
    digest = hashlib.sha256()
    files = [(item.table, item.path, item.fmt in ("csv", "jsonl")) for item in inputs]
    for table, path, text in files + [("settings", Path(p), False) for p in settings_files]:
        digest.update(f"{table}\0{path.name}\0".encode())
        for chunk in read_chunks(path, count_lines=text):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Staged:
    """What :func:`stage_raw` read: the file's column names (as written), and whether it has no
    rows at all (a CSV header alone, a Parquet file of no rows, a JSON Lines file of no lines)."""

    columns: list[str]
    empty: bool


def stage_raw(
    con: duckdb.DuckDBPyConnection,
    item: InputFile,
    temp_table: str,
    *,
    lazy: bool = False,
    ragged: str | None = None,
    empty_ok: bool = False,
) -> Staged:
    """Read a file into ``temp_table`` with a ``_line`` column; return its column names.

    CSV and JSON Lines values stay text so that a bad value becomes a reject with the value
    kept, not a failed read; Parquet keeps its own types.

    A file of no rows fails the read unless ``empty_ok`` (then ``temp_table`` has the file's
    columns and no rows). A file of no bytes at all is no CSV or Parquet file, and always fails;
    for JSON Lines, which has no header, it is a file of no records.

    A CSV record with more or fewer fields than the header, and a JSON Lines line that is not
    a JSON object, are left out of ``temp_table``. With ``ragged``, such records go to a temp
    table of that name (``line``, ``value``: the record as written, ``reason``), made empty for
    a file without any; without it, the first one fails the read naming its line.

    With ``lazy``, ``temp_table`` is a view whose ``_line`` is numbered as it is read: over the
    Parquet file itself (the load reads it once, so a copy was a whole extra pass and its memory
    for nothing), over a copy of a CSV's rows (see :func:`_view_csv`). The caller reads it inside
    :func:`reading`, where a bad byte deep in a Parquet file is found, and removes it with
    :func:`drop_staged`."""
    if item.stage is not None:
        reader = item.stage
    elif lazy and item.fmt in _VIEWS:
        reader = _VIEWS[item.fmt]
    else:
        reader = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}[item.fmt]
    if item.stage is None:
        _refuse_no_content(item)
    if ragged is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {ragged} (line BIGINT, value VARCHAR, reason VARCHAR)")
    try:
        if item.stage is None and item.fmt in ("csv", "jsonl"):
            reader(con, item, temp_table, ragged=ragged)
        else:
            reader(con, item, temp_table)
    except duckdb.Error as error:
        raise LoadError(_explain_read_error(item, error)) from error
    columns = [
        name
        for (name,) in con.sql(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND database_name = 'temp' ORDER BY column_index",
            params=[temp_table],
        ).fetchall()
        if name != "_line"
    ]
    with reading(item):  # one row is enough to tell; a count would read all of a view
        empty = not con.sql(f"SELECT 1 FROM {temp_table} LIMIT 1").fetchall()
    if empty and ragged is not None:
        empty = not con.sql(f"SELECT 1 FROM {ragged} LIMIT 1").fetchall()
    if empty and not empty_ok:
        raise LoadError(f"{item.name}: file is empty ({NO_ROWS.get(item.fmt, 'no rows')})")
    lowered = [c.lower() for c in (_csv_header(item) if item.fmt == "csv" else columns)]
    repeated = sorted({c for c in lowered if lowered.count(c) > 1})
    if repeated:
        where = " line 1" if item.fmt == "csv" else ""
        raise LoadError(f"{item.name}{where}: column {repeated[0]!r} appears more than once (names are case-insensitive)")
    return Staged(columns, empty)


# What a file of no rows has, by format: the summary of a load and the refusal of an import say it.
NO_ROWS = {"csv": "a header but no rows", "parquet": "no rows", "jsonl": "no records"}


def _refuse_no_content(item: InputFile) -> None:
    """A CSV or Parquet file of no bytes, or a CSV file of nothing but blank lines, has no header
    to read: it is not a file of no rows but a broken export (one cut off, or saved empty)."""
    size = item.path.stat().st_size
    if size == 0 and item.fmt != "jsonl":
        raise LoadError(_empty_message(item.path, item.fmt))
    if item.fmt == "csv" and size <= 4096:
        text = item.path.read_bytes().removeprefix(b"\xef\xbb\xbf")
        if not text.strip():
            raise LoadError(f"{item.name}: file is empty (blank lines only): a CSV file starts with its header row")


@contextmanager
def reading(item: InputFile) -> Iterator[None]:
    """Where a lazily staged file is read: a failure names the file as a failure to stage it would."""
    try:
        yield
    except duckdb.Error as error:
        raise LoadError(_explain_read_error(item, error)) from error


def drop_staged(con: duckdb.DuckDBPyConnection, temp_table: str) -> None:
    """Drop what :func:`stage_raw` made: a table, or a view and the copy of rows behind it."""
    is_view = con.sql(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND temporary", params=[temp_table]
    ).fetchall()[0][0]
    con.execute(f"DROP {'VIEW' if is_view else 'TABLE'} {temp_table}")
    _drop_rows(con, temp_table)


def _drop_rows(con: duckdb.DuckDBPyConnection, temp_table: str) -> None:
    """Drop the rows copied for ``temp_table`` and their start lines, if any."""
    con.execute(f"DROP TABLE IF EXISTS {temp_table}_rows")
    con.execute(f"DROP TABLE IF EXISTS {temp_table}_rows_lines")


def _csv_header(item: InputFile) -> list[str]:
    """The header as written: DuckDB renames a repeated column (stage, stage_1), hiding it."""
    with item.path.open(encoding="utf-8", errors="replace", newline="") as handle:
        return [name.strip() for name in next(csv.reader(handle), [])]


def _read_csv(con: duckdb.DuckDBPyConnection, item: InputFile, temp_table: str, *, ragged: str | None = None) -> None:
    _view_csv(con, item, f"{temp_table}_view", ragged=ragged)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {temp_table} AS SELECT * FROM {temp_table}_view")
    drop_staged(con, f"{temp_table}_view")


def _read_parquet(con: duckdb.DuckDBPyConnection, item: InputFile, temp_table: str) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {temp_table} AS "
        "SELECT file_row_number + 1 AS _line, * EXCLUDE (file_row_number) "
        "FROM read_parquet(?, file_row_number = true)",
        [str(item.path)],
    )


def _view_parquet(con: duckdb.DuckDBPyConnection, item: InputFile, temp_table: str) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {temp_table} AS "
        "SELECT file_row_number + 1 AS _line, * EXCLUDE (file_row_number) "
        f"FROM read_parquet({_literal(item.name)}, file_row_number = true)"
    )


def _view_csv(con: duckdb.DuckDBPyConnection, item: InputFile, temp_table: str, *, ragged: str | None = None) -> None:
    # read_csv has no row-number column, and row_number() OVER () straight over it runs every
    # step that reads the view on one thread. Over a table DuckDB numbers rows inside the
    # parallel scan, so the rows are copied once (in parallel, in file order), then numbered.
    #
    # store_rejects: a record with more or fewer fields than the header is set aside, with its
    # byte position, instead of failing the read. The default strict read fails on such a
    # record past the sniffer's sample, and a failed statement aborts the load's transaction,
    # so the read cannot be retried; inside the sample, the sniffer gives up on the dialect and
    # reads each line as one column (or takes a record for the header). Setting the rejects
    # aside costs nothing measurable on a well-formed file, which is still read once.
    rejects = f"{temp_table}_misread"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {temp_table}_rows AS "
        f"SELECT * FROM read_csv({_literal(item.name)}, all_varchar = true, header = true, store_rejects = true, "
        f"rejects_table = {_literal(rejects)}, rejects_scan = {_literal(rejects + '_scan')})"
    )
    try:
        misread = _ragged_records(con, item, rejects)
    finally:
        con.execute(f"DROP TABLE {rejects}")
        con.execute(f"DROP TABLE {rejects}_scan")
    if misread and ragged is None:
        line, _, reason = misread[0]
        raise LoadError(f"{item.name} line {line}: {reason}")
    if misread:
        con.register("_misread", pl.DataFrame(misread, schema=["line", "value", "reason"], orient="row"))
        con.execute(f"INSERT INTO {ragged} SELECT * FROM _misread")
        con.unregister("_misread")
    skipped = [line for line, _, _ in misread]
    con.execute(f"CREATE OR REPLACE TEMP VIEW {temp_table} AS {_numbered(con, item, temp_table, header=True, skipped=skipped)}")


# The longest CSV record DuckDB's reader takes (its max_line_size, left at the default). A larger
# limit loads a longer value but costs memory on every CSV read (measured on a 300 MB file: +100 MB
# of peak memory at 4 MB, +200 MB at 8 MB), for a record few exports have; Parquet has no limit.
CSV_MAX_LINE_BYTES = 2_000_000


def _ragged_records(con: duckdb.DuckDBPyConnection, item: InputFile, rejects: str) -> list[tuple[int, str, str]]:
    """(line, record as written, reason) of each record DuckDB set aside for its field count, in
    file order. Any other error DuckDB set aside fails the read as the strict read would have."""
    records = con.sql(
        f"""SELECT line_byte_position, CAST(any_value(error_type) AS VARCHAR),
                   any_value(csv_line), any_value(error_message),
                   TRY_CAST(regexp_extract(any_value(error_message), 'Expected Number of Columns: ([0-9]+)', 1) AS BIGINT),
                   -- One reject per missing or extra field, each counting the fields up to it.
                   min(TRY_CAST(regexp_extract(error_message, 'Found: ([0-9]+)', 1) AS BIGINT)),
                   max(TRY_CAST(regexp_extract(error_message, 'Found: ([0-9]+)', 1) AS BIGINT)),
                   bool_and(error_type IN ('TOO MANY COLUMNS', 'MISSING COLUMNS'))
            FROM {rejects} GROUP BY line_byte_position ORDER BY line_byte_position"""
    ).fetchall()
    if not records:
        return []
    lines = lines_at(item.path, [position for position, *_ in records])
    result = []
    for line, (_, error_type, text, message, expected, fewest, most, field_count) in zip(lines, records):
        if not field_count:
            if error_type == "LINE SIZE OVER MAXIMUM":
                raise LoadError(_record_too_long(item, line) or f"{item.name} line {line}: cannot be read as CSV: {message}")
            if error_type == "INVALID ENCODING":
                raise LoadError(_first_invalid_utf8(item) or f"{item.name} line {line}: {message}")
            raise LoadError(f"{item.name} line {line}: cannot be read as CSV: {message}")
        found = most if error_type == "TOO MANY COLUMNS" else fewest
        # DuckDB keeps the line break a CRLF record follows in front of it.
        result.append((line, text.lstrip("\r\n"), f"expected {expected} fields (the header's), found {found}"))
    return result


def _numbered(
    con: duckdb.DuckDBPyConnection, item: InputFile, temp_table: str, *, header: bool, skipped: Sequence[int] = ()
) -> str:
    """``{temp_table}_rows`` with ``_line``, the line each record starts on: record k is line k
    (+1 after a header) unless the file has blank lines or values spanning lines (see
    :mod:`crm_lab.file_lines`); then a table of start lines is joined by record number.
    ``skipped``: the start lines of records the file has but ``{temp_table}_rows`` left out."""
    rows = f"{temp_table}_rows"
    records = con.sql(f"SELECT count(*) FROM {rows}").fetchall()[0][0]
    starts = record_start_lines(item.path, records + len(skipped), header=header, fmt=item.fmt)
    if skipped:
        if starts is None:
            starts = np.arange(1 + int(header), records + len(skipped) + 1 + int(header))
        starts = starts[~np.isin(starts, np.asarray(skipped, dtype=np.int64))]
        if len(starts) != records:  # the left-out lines are not record starts here: number records
            starts = None
    if starts is None:
        return f"SELECT row_number() OVER () + {int(header)} AS _line, * FROM {rows}"
    con.register("_start_lines", pl.DataFrame({"_record": np.arange(1, records + 1), "_line": starts}))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {rows}_lines AS SELECT * FROM _start_lines")
    con.unregister("_start_lines")
    return (
        f"SELECT l._line, r.* EXCLUDE (_record) FROM (SELECT row_number() OVER () AS _record, * FROM {rows}) r "
        f"JOIN {rows}_lines l USING (_record)"
    )


_VIEWS = {"csv": _view_csv, "parquet": _view_parquet}


def _literal(text: str) -> str:
    """A view cannot take a bound parameter: the path goes in as a quoted literal."""
    return "'" + text.replace("'", "''") + "'"


# A JSON Lines file's columns are the keys of the objects among its first records, as DuckDB's
# own read_json would detect them.
JSONL_SAMPLE = 20480
_NOT_OBJECT = "_crm_lab_not_an_object"


def _read_jsonl(con: duckdb.DuckDBPyConnection, item: InputFile, temp_table: str, *, ragged: str | None = None) -> None:
    # Each line is read as its JSON text, then turned into columns: every value as text except
    # the payload, kept as JSON so that an explicit null and a missing key stay different. A line
    # that is valid JSON but not an object ("text", [1, 2]) is a refused record like a CSV record
    # of the wrong field count, found in the same pass (read_json would fail the whole file on
    # it, or, when one is among its sample, read every line as a single column).
    source = f"read_ndjson_objects({_literal(item.name)})"
    keys = [
        key
        for (key,) in con.sql(
            f"""SELECT key FROM (
                    SELECT unnest(json_keys(json)) AS key, unnest(range(len(json_keys(json)))) AS position, record
                    FROM (SELECT json, row_number() OVER () AS record FROM (FROM {source} LIMIT {JSONL_SAMPLE}))
                    WHERE json_type(json) = 'OBJECT')
                GROUP BY key ORDER BY min(record), min(position)"""
        ).fetchall()
    ]
    lowered = [key.lower() for key in keys]
    repeated = sorted({key for key in lowered if lowered.count(key) > 1})
    if repeated:
        raise LoadError(f"{item.name}: column {repeated[0]!r} appears more than once (names are case-insensitive)")
    # The sample names the columns, except a contract column whose key first shows after it:
    # read those too, and keep the ones some line has (a key holding only nulls reads as absent).
    unsampled = [c.name for c in input_columns(item.table) if c.name not in lowered] if item.table in LOADABLE_TABLES else []
    # The first character tells an object without parsing the line again (json_type would).
    marker = f"CASE WHEN NOT starts_with(ltrim(CAST(json AS VARCHAR), ' ' || chr(9) || chr(13)), '{{') THEN CAST(json AS VARCHAR) END"
    columns = ""
    if keys:
        shape = json.dumps({key: "JSON" if key.lower() == "payload" else "VARCHAR" for key in keys + unsampled})
        columns = f", unnest(json_transform(json, {_literal(shape)}))"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {temp_table}_rows AS SELECT {marker} AS {_NOT_OBJECT}{columns} FROM {source}")
    if keys and unsampled:
        counts = con.sql(f"SELECT {', '.join(f'count({quote_ident(c)})' for c in unsampled)} FROM {temp_table}_rows").fetchall()[0]
        for name, count in zip(unsampled, counts):
            if not count:
                con.execute(f"ALTER TABLE {temp_table}_rows DROP COLUMN {quote_ident(name)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {temp_table}_numbered AS {_numbered(con, item, temp_table, header=False)}")
    _drop_rows(con, temp_table)
    # The numbered rows become the rows behind a view of the objects (a rename, not a copy),
    # which drop_staged removes with the view.
    con.execute(f"ALTER TABLE {temp_table}_numbered RENAME TO {temp_table}_rows")
    not_objects = f"SELECT _line, {_NOT_OBJECT} FROM {temp_table}_rows WHERE {_NOT_OBJECT} IS NOT NULL ORDER BY _line"
    if ragged is None:
        first = con.sql(f"{not_objects} LIMIT 1").fetchall()
        if first:
            raise LoadError(f"{item.name} line {first[0][0]}: {NOT_AN_OBJECT}")
    else:
        con.execute(f"INSERT INTO {ragged} SELECT _line, {_NOT_OBJECT}, {_literal(NOT_AN_OBJECT)} FROM ({not_objects})")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {temp_table} AS "
        f"SELECT * EXCLUDE ({_NOT_OBJECT}) FROM {temp_table}_rows WHERE {_NOT_OBJECT} IS NULL"
    )


NOT_AN_OBJECT = "not a JSON object"


def _explain_read_error(item: InputFile, error: duckdb.Error) -> str:
    text = str(error)
    if "unicode" in text.lower() or "utf-8" in text.lower() or "utf8" in text.lower():
        located = _first_invalid_utf8(item)
        if located:
            return located
    if item.fmt == "csv" and "maximum line size" in text.lower():
        located = _record_too_long(item)
        if located:
            return located
    first_line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    kind = {"csv": "CSV", "parquet": "Parquet", "jsonl": "JSON Lines"}.get(item.fmt, item.fmt)
    return f"{item.name}: cannot be read as {kind}: {first_line}"


def _record_too_long(item: InputFile, line: int | None = None) -> str | None:
    """Which line holds a CSV record longer than DuckDB's reader takes, how long it is and which
    column has the long value. ``line``: where DuckDB says it is (it numbers a record met while
    it sniffs the file as line 1); else the first line over the limit is found here."""
    found = long_line(item.path, CSV_MAX_LINE_BYTES, line)
    if found is None:
        return None
    number, text = found
    column = ""
    header = _csv_header(item)
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(max(limit, len(text) + 1))
        values = next(csv.reader([text.decode("utf-8", "replace")]), [])
    except csv.Error:
        values = []
    finally:
        csv.field_size_limit(limit)
    if values:
        longest = max(range(len(values)), key=lambda i: len(values[i]))
        if longest < len(header):
            column = f", column {header[longest]} ({len(values[longest].encode()):,} bytes)"
    size = f"the record is {len(text):,} bytes, over" if len(text) > CSV_MAX_LINE_BYTES else "the record is over"
    return (
        f"{item.name} line {number}{column}: {size} the CSV reader's limit of "
        f"{CSV_MAX_LINE_BYTES:,} bytes per record; shorten that value, or save the table as Parquet, "
        "which has no such limit"
    )


def _first_invalid_utf8(item: InputFile) -> str | None:
    """Where the first byte that is not UTF-8 sits: line, column name (CSV) and the byte."""
    data = item.path.read_bytes()
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as bad:
        offset = bad.start
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = ""
    if item.fmt == "csv":
        header_end = data.find(b"\n")
        header = next(csv.reader(io.StringIO(data[: header_end if header_end >= 0 else len(data)].decode("utf-8", "replace"))))
        prefix = data[line_start:offset].decode("utf-8", "replace")
        field_index = len(next(csv.reader(io.StringIO(prefix)), [""])) - 1 if prefix else 0
        if 0 <= field_index < len(header):
            column = f", column {header[field_index].strip()}"
    return (
        f"{item.name} line {line}{column}: byte 0x{data[offset]:02x} is not valid UTF-8; "
        "save the file as UTF-8 (in Excel: CSV UTF-8) and load it again"
    )
