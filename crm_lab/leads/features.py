"""Read what the lead engines need from a workbench database, as of an instant (SQL files under
``crm_lab/sql/leads``). Reads only: the connection may be read-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

import duckdb
import numpy as np
import polars as pl

from crm_lab.errors import InvalidArgument

# Tables a lead study reads; replay builds the histories.
REQUIRED_TABLES = ("lead_history", "deal_history", "events", "events_rejected")


def leads_sql(name: str) -> str:
    return (files("crm_lab") / "sql" / "leads" / f"{name}.sql").read_text(encoding="utf-8")


def check_replayed(con: duckdb.DuckDBPyConnection) -> None:
    present = {name for (name,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    missing = [table for table in REQUIRED_TABLES if table not in present]
    if missing:
        raise InvalidArgument(
            f"the database has no {', '.join(missing)}: load the export and run `crm-lab replay` first"
        )


def instant(con: duckdb.DuckDBPyConnection, value: Any, name: str = "as_of") -> datetime:
    """A timestamp, date or text as an aware UTC datetime, as DuckDB reads it (text without an
    offset is UTC; a bare date is midnight at its start)."""
    if value is None:
        raise InvalidArgument(f"{name} is required: the instant to stand at, e.g. '2025-06-30 23:59:59'")
    try:
        return con.sql("SELECT CAST(? AS TIMESTAMPTZ)", params=[value]).fetchall()[0][0]
    except duckdb.Error as error:
        raise InvalidArgument(f"{name} must be a date or timestamp, got {value!r}") from error


def companies_with_leads(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [c for (c,) in con.sql("SELECT DISTINCT company_id FROM lead_history ORDER BY 1").fetchall()]


def read_lead_features(con: duckdb.DuckDBPyConnection, *, as_of: datetime, company: str | None) -> pl.DataFrame:
    """Every lead created by ``as_of`` as it stood at ``as_of``: fields, engagement counts, age
    and whether it had converted; see ``lead_features.sql``."""
    return con.sql(leads_sql("lead_features"), params={"as_of": as_of, "company": company}).pl()


@dataclass(frozen=True)
class DealEconomics:
    """What a converted lead's deal was worth, as known at an instant (``lead_deal_economics.sql``)."""

    lead_deals: int
    closed_deals: int
    won_deals: int
    win_rate: float | None  # None when no such deal has closed
    mean_won_amount: float | None  # None when none was won
    won_amounts: np.ndarray


def read_deal_economics(con: duckdb.DuckDBPyConnection, *, as_of: datetime, company: str) -> DealEconomics:
    rows = con.sql(leads_sql("lead_deal_economics"), params={"as_of": as_of, "company": company}).fetchall()
    if not rows:
        return DealEconomics(0, 0, 0, None, None, np.zeros(0))
    _, lead_deals, closed, won, win_rate, mean_won, amounts = rows[0]
    return DealEconomics(lead_deals, closed, won, win_rate, mean_won, np.asarray(amounts, dtype=np.float64))
