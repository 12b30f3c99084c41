"""What notebooks call: a read-only workbench on a database, and the replayed tables as polars.

Notebooks never write; every query binds its values as parameters."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from crm_lab.as_of import event_span
from crm_lab.load import load
from crm_lab.query import fetch_polars
from crm_lab.replay import REPLAY_VERSION, replay
from crm_lab.sources import fingerprint, resolve_inputs
from crm_lab.errors import CrmLabError
from crm_lab.tenancy import explain_error, open_connection, set_parameters

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "data" / "sample"
SAMPLE_CACHE = REPO_ROOT / "data" / "generated"
# Set by `crm-lab lab --db PATH` for the kernels it starts: notebooks given no db_path read PATH.
DATABASE_VARIABLE = "CRM_LAB_DB"


def sample_database() -> Path:
    """The bundled sample (data/sample) loaded and replayed, cached by the sample's fingerprint
    and the fold's version so notebooks and tests start in about a second."""
    inputs, _ = resolve_inputs([SAMPLE_DIR])
    # Keyed by the fold's version too: a sample replayed by older fold logic is not reused.
    target = SAMPLE_CACHE / f"sample-{fingerprint(inputs)[:12]}-r{REPLAY_VERSION}.duckdb"
    if not target.exists():
        SAMPLE_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=SAMPLE_CACHE) as scratch:
            building = Path(scratch) / target.name
            load(building, [SAMPLE_DIR])
            replay(building)
            os.replace(building, target)
    return target


def default_database() -> Path:
    """Where a notebook given no ``db_path`` reads: ``$CRM_LAB_DB`` when set (``crm-lab lab``
    sets it from ``--db``), else the bundled sample."""
    chosen = os.environ.get(DATABASE_VARIABLE)
    return Path(chosen) if chosen else sample_database()


@dataclass
class Workbench:
    """A read-only view of one workbench database, optionally scoped to one company: then every
    public table, view and macro answers for that company only (crm_lab.tenancy)."""

    db_path: Path
    company: str | None = None

    def __post_init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection = open_connection(self.db_path, self.company)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, sql: str, params: list | dict | None = None) -> pl.DataFrame:
        """Any read query, as polars (through Arrow, no Python objects).

        An INTERVAL column is a polars Duration when no value has a month part (else DuckDB's
        text for it); unions, bit strings and bignums are DuckDB's text (see docs/SQL.md). A
        column polars cannot hold raises CrmLabError naming the column and its type.

        A public name that is missing (its command has not run, or it spans companies in a company
        session) is explained as ``crm-lab sql`` explains it; other errors are DuckDB's own."""
        try:
            relation = self.con.sql(sql, params=params)
            return fetch_polars(relation) if relation is not None else pl.DataFrame()
        except duckdb.Error as error:
            explained = explain_error(self.con, str(error), self.db_path, self.company)
            if explained == str(error).strip():
                raise
            raise CrmLabError(explained) from error

    def instant(self, value) -> datetime:
        """A timestamp, date or text such as '2025-03-31 23:59:59' as an aware UTC datetime
        (text without an offset is UTC), as DuckDB reads it."""
        return self.con.sql("SELECT CAST(? AS TIMESTAMPTZ)", params=[value]).fetchall()[0][0]

    def set_parameters(self, **values) -> None:
        """Values for SQL to read as ``param('name')`` (as text; cast where used), bound rather
        than formatted into queries, and visible to %%sql cells."""
        set_parameters(self.con, **values)

    def companies(self) -> list[str]:
        return [c for (c,) in self.con.sql("SELECT DISTINCT company_id FROM deal_history ORDER BY 1").fetchall()]

    def event_span(self) -> tuple:
        """First and last occurred_at of the (company's) events."""
        return event_span(self.con)  # a company session's events are that company's

    def pipeline_as_of(self, ts) -> pl.DataFrame:
        """Open deals as of an instant, one row per deal."""
        return self.query(
            "SELECT * FROM deals_as_of(CAST(? AS TIMESTAMPTZ)) WHERE NOT is_closed ORDER BY company_id, deal_id",
            [ts],
        )

    # Amounts are summed per currency: companies (and deals) may keep their books in different
    # currencies, and a total across them would mean nothing. One currency gives one group.

    def pipeline_by_stage(self, ts) -> pl.DataFrame:
        """Open deals and their amount per currency and stage as of an instant."""
        return self.query(
            """SELECT p.currency, p.stage, count(*) AS deals, sum(amount) AS amount
                FROM deals_as_of(CAST(? AS TIMESTAMPTZ)) p LEFT JOIN deal_stage_order o USING (stage)
                WHERE NOT is_closed
                GROUP BY p.currency, p.stage, o.stage_order
                ORDER BY p.currency NULLS LAST, o.stage_order NULLS LAST, p.stage""",
            [ts],
        )

    def waterfall(self, t0, t1, close_from=None, close_to=None) -> pl.DataFrame:
        """Waterfall totals between two instants (sums of pipeline_movement), one row per currency;
        ``reopened`` is the part of ``created`` that came from reopens."""
        return self.query(
            """SELECT d.currency, sum(start) AS start, sum(created) AS created, sum(reopened) AS reopened,
                       sum(pulled_in) AS pulled_in,
                       sum(amount_up) AS amount_up, sum(amount_down) AS amount_down,
                       sum(pushed_out) AS pushed_out, sum(won) AS won, sum(lost) AS lost, sum("end") AS "end"
                FROM pipeline_movement(CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ),
                                       close_from := CAST(? AS DATE), close_to := CAST(? AS DATE)) m
                LEFT JOIN (SELECT company_id, deal_id, arg_max(currency, version) AS currency
                           FROM deal_history GROUP BY ALL) d USING (company_id, deal_id)
                GROUP BY d.currency ORDER BY d.currency NULLS LAST""",
            [t0, t1, close_from, close_to],
        )

    def funnel(self) -> pl.DataFrame:
        return self.query(
            """SELECT stage, stage_order, sum(deals_reached) AS deals_reached, sum(deals_advanced) AS deals_advanced,
                       sum(deals_won) AS deals_won,
                       sum(deals_advanced) / sum(deals_reached) AS advance_rate,
                       sum(deals_won) / sum(deals_reached) AS win_rate_from_stage
                FROM deal_stage_funnel
                GROUP BY ALL ORDER BY stage_order NULLS LAST"""
        )

    def time_in_stage(self) -> pl.DataFrame:
        return self.query(
            """SELECT stage, count(*) AS stays, median(days) AS median_days, quantile_cont(days, 0.9) AS p90_days
                FROM deal_stage_stays s LEFT JOIN deal_stage_order o USING (stage)
                GROUP BY stage, o.stage_order ORDER BY o.stage_order NULLS LAST"""
        )

    def snapshots(self) -> pl.DataFrame:
        """Open pipeline per currency and period end: deals and amount."""
        return self.query(
            """SELECT currency, period_end, count(*) AS deals, sum(amount) AS amount
                FROM pipeline_snapshots GROUP BY ALL ORDER BY currency NULLS LAST, period_end"""
        )


def open_workbench(db_path: str | os.PathLike | None = None, company: str | None = None) -> Workbench:
    """A read-only workbench: ``db_path``, or :func:`default_database` when it is None."""
    return Workbench(Path(db_path) if db_path else default_database(), company)


def enable_sql_magic(workbench: Workbench) -> None:
    """Load jupysql on the workbench's native DuckDB connection, returning polars, with its
    telemetry and version check switched off (they would call out to the network)."""
    from crm_lab.serve import OFFLINE_ENVIRONMENT

    os.environ.update(OFFLINE_ENVIRONMENT)
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("enable_sql_magic works inside IPython or Jupyter")
    import sql.magic

    # jupysql looks for its settings in the nearest pyproject.toml, and without the toml package
    # prints an install hint into the notebook. crm_lab sets every setting it needs just below,
    # so the lookup is skipped while the extension loads.
    lookup, sql.magic.load_SqlMagic_configs = sql.magic.load_SqlMagic_configs, lambda ip: None
    try:
        shell.run_line_magic("load_ext", "sql")
    finally:
        sql.magic.load_SqlMagic_configs = lookup
    shell.run_line_magic("config", "SqlMagic.autopolars = True")
    shell.run_line_magic("config", "SqlMagic.displaycon = False")
    shell.run_line_magic("config", "SqlMagic.feedback = 0")
    shell.user_ns["_crm_lab_connection"] = workbench.con
    shell.run_line_magic("sql", "_crm_lab_connection")
