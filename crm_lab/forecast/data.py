"""Read what a forecast learns from and simulates, from the workbench database (read-only).

The set work is SQL in ``crm_lab/sql/forecast/``: ``deal_closes.sql`` (every instant a deal left
the open pipeline), ``snapshot_outcomes.sql`` (each snapshot row with its next close),
``won_closes.sql``, ``open_deals.sql`` and ``reps.sql``. Everything read here is bounded by an
instant ``until``: no close, win or snapshot after it is fetched, so a forecast as of ``until``
cannot see the future, and a backtest reads once up to its last window and cuts each as-of's
share in :func:`crm_lab.forecast.estimate.label_snapshots`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib.resources import files

import duckdb
import polars as pl

from crm_lab.errors import InvalidArgument
from crm_lab.forecast.periods import to_instant

REQUIRED_TABLES = ("deal_history", "pipeline_snapshots", "reps")


def forecast_sql(name: str) -> str:
    """The text of ``crm_lab/sql/forecast/<name>.sql``."""
    return (files("crm_lab") / "sql" / "forecast" / f"{name}.sql").read_text(encoding="utf-8")


@dataclass(frozen=True)
class CompanyHistory:
    """One company's learning material up to ``known_until``.

    Attributes
    ----------
    snapshots : polars.DataFrame
        ``snapshot_outcomes.sql`` rows: the open deals at each snapshot with their next close
        (``closed_at``, ``outcome``, ``close_amount``; null when it had not happened by
        ``known_until``).
    wins : polars.DataFrame
        ``won_closes.sql`` rows: every win up to ``known_until`` with ``run_start``.
    reps : polars.DataFrame
        ``reps.sql`` rows.
    """

    company_id: str
    snapshots: pl.DataFrame
    wins: pl.DataFrame
    reps: pl.DataFrame
    known_until: dt.datetime

    @property
    def first_snapshot_at(self) -> dt.datetime | None:
        if self.snapshots.is_empty():
            return None
        return self.snapshots["snapshot_at"].min()


def check_replayed(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse, with what to do, a database that was never replayed."""
    present = {
        name
        for (name,) in con.sql(
            "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views()"
        ).fetchall()
    }
    missing = [t for t in REQUIRED_TABLES if t not in present]
    if missing:
        raise InvalidArgument(
            f"db has no {', '.join(missing)}: load and replay it first (crm-lab load ..., crm-lab replay)"
        )


def company_ids(con: duckdb.DuckDBPyConnection, company: str | None) -> list[str]:
    """The companies a run covers: ``company`` (checked to exist) or every company with deals."""
    known = [c for (c,) in con.sql("SELECT DISTINCT company_id FROM deal_history ORDER BY 1").fetchall()]
    if company is None:
        if not known:
            raise InvalidArgument("db has no deals: nothing to forecast (load and replay a CRM export first)")
        return known
    if company not in known:
        raise InvalidArgument(f"company {company!r} has no deals in this database; known: {', '.join(known) or 'none'}")
    return [company]


def read_histories(
    con: duckdb.DuckDBPyConnection, *, until, company: str | None = None
) -> dict[str, CompanyHistory]:
    """Snapshots with outcomes, wins and reps up to the instant ``until``, per company."""
    check_replayed(con)
    until_at = to_instant(until, "until")
    wanted = company_ids(con, company)
    params = {"company": company}
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _forecast_closes AS "
        f"SELECT * FROM ({forecast_sql('deal_closes')}) WHERE closed_at <= CAST($until AS TIMESTAMPTZ)",
        {**params, "until": until_at},
    )
    try:
        snapshots = con.sql(forecast_sql("snapshot_outcomes"), params={**params, "as_of": until_at}).pl()
        wins = con.sql(forecast_sql("won_closes"), params={**params, "until": until_at}).pl()
    finally:
        con.execute("DROP TABLE IF EXISTS _forecast_closes")
    reps = con.sql(forecast_sql("reps"), params=params).pl()
    out = {}
    for company_id in wanted:
        def mine(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.filter(pl.col("company_id") == company_id)

        out[company_id] = CompanyHistory(company_id, mine(snapshots), mine(wins), mine(reps), until_at)
    return out


def read_open_deals(con: duckdb.DuckDBPyConnection, as_of, company: str | None = None) -> pl.DataFrame:
    """The open deals at the instant ``as_of`` (``open_deals.sql``)."""
    return con.sql(forecast_sql("open_deals"), params={"as_of": to_instant(as_of), "company": company}).pl()


def read_other_ids(con: duckdb.DuckDBPyConnection, as_of, company: str) -> dict:
    """The open deals at ``as_of`` and the reps of every company but ``company``:
    ``{"deals": {deal_id: {companies}}, "reps": {rep_id: {companies}}}``, so that a scenario of a
    one-company run naming another company's deal or rep is told whose it is."""
    out: dict = {"deals": {}, "reps": {}}
    deals = con.sql(
        "SELECT deal_id, company_id FROM deals_as_of(CAST($as_of AS TIMESTAMPTZ)) WHERE NOT is_closed AND company_id <> $company",
        params={"as_of": to_instant(as_of), "company": company},
    ).fetchall()
    reps = con.sql("SELECT rep_id, company_id FROM reps WHERE company_id <> $company", params={"company": company}).fetchall()
    for kind, rows in (("deals", deals), ("reps", reps)):
        for key, owner in rows:
            out[kind].setdefault(key, set()).add(owner)
    return out
