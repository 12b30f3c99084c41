"""Import a real CRM's export: its files become native-contract rows and events, loaded by
:func:`crm_lab.load.load` (one transaction, idempotent, rejects and quarantine as for a native
load). ``docs/IMPORT.md`` says what maps to what.

Examples
--------
>>> from crm_lab.importers import import_export
>>> import_export("data/crm.duckdb", "data/samples/salesforce/acme", fmt="salesforce")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from crm_lab.db import DEFAULT_DB
from crm_lab.errors import LoadError

FORMATS = ("salesforce", "mapped")

__all__ = ["FORMATS", "import_export", "company_from_path"]


def company_from_path(path: str | os.PathLike) -> str:
    """The default tenant of an export: its folder's name (the file's folder for one file)."""
    path = Path(path).resolve()
    return path.name if path.is_dir() else path.parent.name


def import_export(
    db_path: str | os.PathLike = DEFAULT_DB,
    path: str | os.PathLike = ".",
    *,
    fmt: str = "salesforce",
    mapping: str | os.PathLike | None = None,
    rates: str | os.PathLike | None = None,
    company: str | None = None,
    strict: bool = False,
    lock_timeout: float | None = None,
    now: datetime | None = None,
):
    """Import a foreign CRM export into the workbench database.

    Parameters
    ----------
    db_path : path
        The workbench database; created with the schema when missing.
    path : path
        A Salesforce export folder (``fmt="salesforce"``), or the export file a mapping reads
        (``fmt="mapped"``: a deals or, with ``kind: leads``, a leads export).
    fmt : {"salesforce", "mapped"}
        The export's shape.
    mapping : path, optional
        A YAML mapping (docs/IMPORT.md): required for ``mapped``, where its ``kind`` says whether
        the file's rows are deals or leads; for Salesforce it may add stage, lead status and
        activity type names and date formats.
    rates : path, optional
        CSV of exchange rates to the corporate currency (``currency,rate[,valid_from,valid_to]``).
    company : str, optional
        The tenant the rows belong to; default the export folder's name. A tenant that holds
        data other than this kind of import's is refused; its stored ``companies`` row is kept.
    strict, lock_timeout
        As for :func:`crm_lab.load.load`.
    now : datetime, optional
        The import's own time (default: the clock): a ``mapped`` export's change to a record the
        database already holds is dated then when the mapping maps no ``updated_at``.

    Returns
    -------
    crm_lab.load.LoadReport
        Per export file and table: rows read, loaded, rejected; events new, duplicate, quarantined.

    Raises
    ------
    LoadError
        The export cannot be imported as a whole (missing file or field, unknown stage or status
        names, an id twice, a converted lead without its conversion date, mixed currencies
        without a rate, dates in several formats, a bad mapping file), or not into this tenant
        (it holds data no import of this kind wrote, or keeps its amounts in another currency:
        :mod:`crm_lab.importers.tenant`). Nothing is written.
    """
    from crm_lab.importers import currency, rejects
    from crm_lab.importers.events import create_changes, derive_events
    from crm_lab.importers.mapped import add_stored_events, drop_stored_baselines, read_mapped
    from crm_lab.importers.mapping import Mapping, read_mapping
    from crm_lab.importers.salesforce import read_salesforce
    from crm_lab.importers.staging import NativeRows, as_inputs, drop_events_of_rejected_rows, notes
    from crm_lab.importers.tenant import check_tenant
    from crm_lab.load import load

    if fmt not in FORMATS:
        raise LoadError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "mapped" and mapping is None:
        raise LoadError("a generic export needs --mapping FILE saying which column is which (docs/IMPORT.md)")
    path = Path(path)
    if not path.exists():
        raise LoadError(f"{path}: no such file or folder")
    spec = read_mapping(mapping, generic=fmt == "mapped") if mapping is not None else Mapping()
    from_folder = not company
    company = company or company_from_path(path)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET VARIABLE import_company = ?", [company])
        # Seconds are what an export's modification times carry; a finer clock only adds noise.
        clock = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        con.execute("SET VARIABLE import_now = CAST(? AS TIMESTAMPTZ)", [clock.isoformat()])
        _attach_stored(con, Path(db_path), lock_timeout)
        check_tenant(con, Path(db_path), company, fmt, from_folder=from_folder)
        create_changes(con)
        rejects.create_rejects(con)
        rate_table = currency.read_rates(con, Path(rates)) if rates is not None else None
        reader = read_salesforce if fmt == "salesforce" else read_mapped
        rows, _ = reader(con, path, spec, rate_table)
        derive_events(con, company)
        if fmt == "mapped":
            drop_stored_baselines(con)
        drop_events_of_rejected_rows(con, rows)
        if fmt == "mapped":
            add_stored_events(con, spec.kind)
        rows.append(NativeRows("events", "_import_events", {}))
        inputs = as_inputs(con, rows)
        passed_over = notes(con)
        judged = rejects.per_file(con)
        if strict and judged:
            raise LoadError(_strict_message(con, sum(judged.values())))
    finally:
        con.close()
    settings_files = tuple(Path(p) for p in (mapping, rates) if p is not None)
    report = load(db_path, inputs=inputs, settings_files=settings_files, strict=strict, lock_timeout=lock_timeout)
    report.skipped.extend(passed_over)
    _count_judged_rejects(report, judged)
    if not any(f.table == "events" for f in report.files):
        # Every row rejected, or an export of records whose events were all refused: the summary
        # still says how many events the import brought.
        from crm_lab.load import FileReport

        report.files.append(FileReport(next((f.file for f in report.files), str(path)), "events"))
    return report


def _count_judged_rejects(report, judged: dict[tuple[str, str], int]) -> None:
    """The rows the importer refused were read: the loader counted them among its rejects
    (its summary's ``rejected``), and here among the rows read, so read = loaded + rejected. A
    file whose every row was refused reached the loader with no rows, which counts nothing."""
    for f in report.files:
        refused = judged.get((f.file, f.table), 0)
        if not refused:
            continue
        f.rows_read += refused
        if f.empty:
            f.empty = ""
            f.rows_rejected = refused


def _strict_message(con: duckdb.DuckDBPyConnection, refused: int) -> str:
    from crm_lab.importers import rejects
    from crm_lab.load import STRICT_EXAMPLES

    lines = [f"--strict: {refused} row(s) of the export rejected; nothing was loaded"]
    lines += [
        f"  {file} line {line}, column {column} = {value!r}: {reason}" if column is not None else f"  {file} line {line}: {reason}: {value!r}"
        for file, line, column, value, reason in rejects.examples(con, STRICT_EXAMPLES)
    ]
    return "\n".join(lines)


def _attach_stored(con: duckdb.DuckDBPyConnection, db_path: Path, lock_timeout: float | None) -> None:
    """Attach the workbench database read-only as ``stored`` when it exists: the tenant's data
    says whether the import may write into it and which companies row to keep, and a later
    ``mapped`` export of records it holds becomes change events against the state the last
    import left. The attach is closed with ``con`` before the loader opens the file for writing."""
    from crm_lab.db import check_database_file, retry_while_locked
    from crm_lab.typing_checks import quote_literal

    check_database_file(db_path)
    if db_path.exists():
        retry_while_locked(lambda: con.execute(f"ATTACH {quote_literal(str(db_path))} AS stored (READ_ONLY)"), db_path, lock_timeout)
