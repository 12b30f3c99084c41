"""Rows an importer itself refuses, before anything reaches the loader: a history row whose
record is not in the export (``OpportunityHistory.csv`` naming an opportunity that
``Opportunity.csv`` lacks), a value of a history row the contract cannot hold, a CSV line with
the wrong number of fields.

Such a row is a reject like the loader's own: it lands in ``load_rejects`` with the export's
file, line and field, its value and the reason, in the transaction of the load (so a refused
import writes none), and it brings no events. The rows are collected here (``_import_rejects``)
and handed to the loader with the native rows of the same export file and table
(:func:`crm_lab.importers.staging.as_inputs`), which counts them with that file's rejects."""

from __future__ import annotations

import duckdb

REJECTS_TABLE = "_import_rejects"
REJECT_COLUMNS = "file VARCHAR, table_name VARCHAR, line BIGINT, column_name VARCHAR, value VARCHAR, reason VARCHAR"


def create_rejects(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {REJECTS_TABLE} ({REJECT_COLUMNS})")


def add_rejects(con: duckdb.DuckDBPyConnection, select_sql: str) -> int:
    """Append the rejects ``select_sql`` gives (columns file, table_name, line, column_name,
    value, reason); return how many."""
    before = count(con)
    con.execute(f"INSERT INTO {REJECTS_TABLE} SELECT * FROM ({select_sql})")
    return count(con) - before


def count(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {REJECTS_TABLE} ({REJECT_COLUMNS})")
    return con.sql(f"SELECT count(*) FROM {REJECTS_TABLE}").fetchall()[0][0]


def per_file(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    """Rejected lines per (export file, native table)."""
    count(con)
    return {
        (file, table): n
        for file, table, n in con.sql(f"SELECT file, table_name, count(DISTINCT line) FROM {REJECTS_TABLE} GROUP BY ALL").fetchall()
    }


def examples(con: duckdb.DuckDBPyConnection, limit: int) -> list[tuple]:
    """The first rejects (file, line, column_name, value, reason), by file and line."""
    count(con)
    return con.sql(
        f"SELECT file, line, column_name, value, reason FROM {REJECTS_TABLE} ORDER BY file, line, column_name LIMIT {int(limit)}"
    ).fetchall()
