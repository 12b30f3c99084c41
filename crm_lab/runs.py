"""Run records: every result row carries a run id, and the run's record holds its parameters,
seed, package version and a fingerprint of the input data, so any result can be traced to
exactly what produced it.

Engines keep their run records in their own tables (``forecast_runs``, ``lead_sweep_runs``,
``territory_plans``), each starting with the columns of :data:`RUN_COLUMNS_SQL`."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import duckdb

from crm_lab import __version__

# The common head of every run-record table, in this order.
RUN_COLUMNS_SQL = """
    run_id          VARCHAR NOT NULL,
    company_id      VARCHAR,               -- NULL when the run spans every company
    started_at      TIMESTAMPTZ NOT NULL,
    seconds         DOUBLE,
    parameters      JSON NOT NULL,         -- every argument, as given
    seed            BIGINT,                -- NULL for runs with no randomness
    crm_lab_version VARCHAR NOT NULL,
    input_fingerprint VARCHAR NOT NULL     -- see crm_lab.runs.input_fingerprint
"""


def new_run_id(kind: str) -> str:
    """``forecast-20261129T122700Z-3f9a1c``: sortable by time, unique without coordination."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}-{stamp}-{secrets.token_hex(3)}"


def input_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """sha256 over every load's input fingerprint (in load order) and the last replay: equal
    fingerprints mean the same input files were loaded the same way and replayed."""
    digest = hashlib.sha256()
    for load_id, fingerprint in con.sql("SELECT load_id, fingerprint FROM load_runs ORDER BY load_id").fetchall():
        digest.update(f"load {load_id} {fingerprint}\n".encode())
    has_replays = con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'replay_runs'").fetchall()[0][0]
    if has_replays:
        for replay_id, version, through in con.sql(
            "SELECT replay_id, replay_version, through_load_id FROM replay_runs ORDER BY replay_id DESC LIMIT 1"
        ).fetchall():
            digest.update(f"replay {replay_id} v{version} through {through}\n".encode())
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


@dataclass
class RunRecord:
    """The head of a run record; engines add their own columns after these."""

    kind: str
    parameters: dict[str, Any]
    input_fingerprint: str
    company_id: str | None = None
    seed: int | None = None
    run_id: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    seconds: float | None = None
    crm_lab_version: str = __version__

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = new_run_id(self.kind)

    def values(self) -> list[Any]:
        """The values of RUN_COLUMNS_SQL, in order, ready to bind."""
        return [
            self.run_id,
            self.company_id,
            self.started_at,
            self.seconds,
            json.dumps(_jsonable(self.parameters), sort_keys=True),
            self.seed,
            self.crm_lab_version,
            self.input_fingerprint,
        ]


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: Any) -> int:
    """Append a polars DataFrame or Arrow table to ``table`` by column name (through Arrow, never
    row by row). Returns the number of rows."""
    arrow = frame.to_arrow() if hasattr(frame, "to_arrow") else frame
    con.register("_crm_lab_frame", arrow)
    try:
        columns = ", ".join(f'"{name}"' for name in arrow.column_names)
        con.execute(f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM _crm_lab_frame')
    finally:
        con.unregister("_crm_lab_frame")
    return arrow.num_rows
