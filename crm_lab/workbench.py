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

from crm_lab.db import connect, writing
from crm_lab.load import load
from crm_lab.replay import replay
from crm_lab.sources import InputFile, fingerprint, resolve_inputs

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "data" / "sample"
SAMPLE_CACHE = REPO_ROOT / "data" / "generated"


def sample_database() -> Path:
    """The bundled sample (data/sample) loaded and replayed, cached by the sample's fingerprint
    so notebooks and tests start in about a second."""
    inputs, _ = resolve_inputs([SAMPLE_DIR])
    target = SAMPLE_CACHE / f"sample-{fingerprint(inputs)[:12]}.duckdb"
    if not target.exists():
        SAMPLE_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=SAMPLE_CACHE) as scratch:
            building = Path(scratch) / target.name
            load(building, [SAMPLE_DIR])
            replay(building)
            os.replace(building, target)
    return target


@dataclass
class Workbench:
    """A read-only view of one workbench database, optionally scoped to one company."""

    db_path: Path
    company: str | None = None

    def __post_init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection = connect(self.db_path, read_only=True)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, sql: str, params: list | dict | None = None) -> pl.DataFrame:
        """Any read query, as polars (through Arrow, no Python objects)."""
        return self.con.sql(sql, params=params).pl()

    def _company_filter(self, alias: str = "") -> tuple[str, list]:
        if self.company is None:
            return "TRUE", []
        return f"{alias}company_id = ?", [self.company]

    def instant(self, value) -> datetime:
        """A timestamp, date or text such as '2025-03-31 23:59:59' as an aware UTC datetime
        (text without an offset is UTC), as DuckDB reads it."""
        return self.con.sql("SELECT CAST(? AS TIMESTAMPTZ)", params=[value]).fetchall()[0][0]

    def companies(self) -> list[str]:
        return [c for (c,) in self.con.sql("SELECT DISTINCT company_id FROM deal_history ORDER BY 1").fetchall()]

    def event_span(self) -> tuple:
        """First and last occurred_at of the (company's) events."""
        where, params = self._company_filter()
        return self.con.sql(f"SELECT min(occurred_at), max(occurred_at) FROM events WHERE {where}", params=params).fetchall()[0]

    def pipeline_as_of(self, ts) -> pl.DataFrame:
        """Open deals as of an instant, one row per deal."""
        where, params = self._company_filter()
        return self.query(
            f"SELECT * FROM deals_as_of(CAST(? AS TIMESTAMPTZ)) WHERE NOT is_closed AND {where} ORDER BY company_id, deal_id",
            [ts, *params],
        )

    def pipeline_by_stage(self, ts) -> pl.DataFrame:
        where, params = self._company_filter()
        return self.query(
            f"""SELECT p.stage, count(*) AS deals, sum(amount) AS amount
                FROM deals_as_of(CAST(? AS TIMESTAMPTZ)) p LEFT JOIN deal_stage_order o USING (stage)
                WHERE NOT is_closed AND {where}
                GROUP BY p.stage, o.stage_order ORDER BY o.stage_order NULLS LAST, p.stage""",
            [ts, *params],
        )

    def waterfall(self, t0, t1, close_from=None, close_to=None) -> pl.DataFrame:
        """Waterfall totals between two instants (sums of pipeline_movement)."""
        where, params = self._company_filter()
        return self.query(
            f"""SELECT sum(start) AS start, sum(created) AS created, sum(pulled_in) AS pulled_in,
                       sum(amount_up) AS amount_up, sum(amount_down) AS amount_down,
                       sum(pushed_out) AS pushed_out, sum(won) AS won, sum(lost) AS lost, sum("end") AS "end"
                FROM pipeline_movement(CAST(? AS TIMESTAMPTZ), CAST(? AS TIMESTAMPTZ),
                                       close_from := CAST(? AS DATE), close_to := CAST(? AS DATE))
                WHERE {where}""",
            [t0, t1, close_from, close_to, *params],
        )

    def funnel(self) -> pl.DataFrame:
        where, params = self._company_filter()
        return self.query(
            f"""SELECT stage, stage_order, sum(deals_reached) AS deals_reached, sum(deals_advanced) AS deals_advanced,
                       sum(deals_won) AS deals_won,
                       sum(deals_advanced) / sum(deals_reached) AS advance_rate,
                       sum(deals_won) / sum(deals_reached) AS win_rate_from_stage
                FROM deal_stage_funnel WHERE {where}
                GROUP BY ALL ORDER BY stage_order NULLS LAST""",
            params,
        )

    def time_in_stage(self) -> pl.DataFrame:
        where, params = self._company_filter()
        return self.query(
            f"""SELECT stage, count(*) AS stays, median(days) AS median_days, quantile_cont(days, 0.9) AS p90_days
                FROM deal_stage_stays s LEFT JOIN deal_stage_order o USING (stage)
                WHERE {where} GROUP BY stage, o.stage_order ORDER BY o.stage_order NULLS LAST""",
            params,
        )

    def snapshots(self) -> pl.DataFrame:
        """Open pipeline per period end: deals and amount."""
        where, params = self._company_filter()
        return self.query(
            f"""SELECT period_end, count(*) AS deals, sum(amount) AS amount
                FROM pipeline_snapshots WHERE {where} GROUP BY ALL ORDER BY period_end""",
            params,
        )


def open_workbench(db_path: str | os.PathLike | None = None, company: str | None = None) -> Workbench:
    """A read-only workbench: ``db_path``, or the bundled sample when it is None."""
    return Workbench(Path(db_path) if db_path else sample_database(), company)
