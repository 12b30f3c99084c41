"""Generate a synthetic CRM world in the native export contract.

The world has several companies (tenants) whose ids deliberately collide (each has its own
``deal-000001``), territories with geographic centres, reps, accounts clustered around the
territories, contacts, products, leads arriving with weekly and yearly seasonality that convert by
a known logistic model, deals moving through the open stages with known per-stage win rates,
durations, amount changes and close-date pushes, activities, and the event log from which the
current-state tables follow exactly (replaying the events gives the ``deals`` and ``leads`` files).
``truth.json`` records every generating parameter, so that the what-if engines can be checked
against the truth.

Output: one file per table, ``<table>.<ext>`` for the tables in :data:`crm_lab.contract.LOADABLE_TABLES`
(columns and types as in ``crm_lab/sql/schema``; the events file has the ten export columns of
:data:`crm_lab.contract.EVENT_INPUT_COLUMNS`), plus ``truth.json``.

Examples
--------
>>> from crm_lab.generate import generate
>>> summary = generate("data/world", companies=3, deals=100_000, seed=1)  # doctest: +SKIP
>>> summary.rows["deals"], summary.events  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crm_lab import _arrow as A
from crm_lab.errors import InvalidArgument
from crm_lab import _world as W
from crm_lab.contract import EVENT_INPUT_COLUMNS, EVENT_TABLE, LOADABLE_TABLES

__all__ = ["FORMATS", "GenerateSummary", "generate", "arrow_schema"]

FORMATS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
"""Output formats and their file extensions."""

TRUTH_FILE = "truth.json"
_SCHEMA_DIR = Path(__file__).with_name("sql") / "schema"
_SQL_TO_ARROW = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMPTZ": A.TS_TYPE,
}
_COLUMN_RE = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s+([A-Z]+(?:\s*\(\s*\d+\s*,\s*\d+\s*\))?)", re.M)


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a contract table, read from ``crm_lab/sql/schema/<table>.sql``.

    For the event log only the export columns (:data:`crm_lab.contract.EVENT_INPUT_COLUMNS`) are
    returned; the rest of ``events`` is derived at load.

    Parameters
    ----------
    table : str
        A name from :data:`crm_lab.contract.LOADABLE_TABLES`.

    Returns
    -------
    pyarrow.Schema
        Columns in the order of the SQL file; DECIMAL(p, s) becomes decimal128(p, s), TIMESTAMPTZ
        becomes timestamp[us, tz=UTC], JSON becomes string.
    """
    sql = (_SCHEMA_DIR / f"{table}.sql").read_text()
    body = sql[sql.index("(") + 1 :]
    columns = []
    for line in body.splitlines():
        m = _COLUMN_RE.match(line.split("--", 1)[0])
        if m:
            columns.append((m.group(1), re.sub(r"\s+", "", m.group(2))))
    if table == EVENT_TABLE:
        by_name = dict(columns)
        columns = [(c, by_name[c]) for c in EVENT_INPUT_COLUMNS]
    fields = []
    for name, typ in columns:
        dec = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", typ)
        if dec:
            at = pa.decimal128(int(dec.group(1)), int(dec.group(2)))
        elif typ in _SQL_TO_ARROW:
            at = _SQL_TO_ARROW[typ]
        else:
            raise ValueError(f"{table}.sql: column {name} has a type the generator does not know: {typ}")
        fields.append(pa.field(name, at))
    return pa.schema(fields)


@dataclass(frozen=True)
class GenerateSummary:
    """What :func:`generate` wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        The output folder.
    files : Mapping[str, pathlib.Path]
        Table name -> file path, for every table in :data:`crm_lab.contract.LOADABLE_TABLES`.
    rows : Mapping[str, int]
        Table name -> number of rows written (``rows["events"] == events``).
    events : int
        Number of events in the event log.
    truth : pathlib.Path
        Path of ``truth.json``.
    fmt : str
        The file format.
    """

    out_dir: Path
    files: Mapping[str, Path]
    rows: Mapping[str, int]
    events: int
    truth: Path
    fmt: str
    generated: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One line per table, for the console. A table with fewer rows than the aggregates
        generated (deals and leads deleted by a ``deleted`` event) says why."""
        lines = [f"generated {self.events} events in {self.out_dir} ({self.fmt}); parameters in {self.truth.name}"]
        for table, count in self.rows.items():
            line = f"  {table}: {count} rows"
            made = self.generated.get(table)
            if made is not None and made > count:
                line += (f" ({made} {table} generated, {made - count} deleted by their events: {count} rows in "
                         f"{self.files[table].name}; the deleted ones' events stay in {self.files[EVENT_TABLE].name})")
            lines.append(line)
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ validation


def _int_arg(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidArgument(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _date_arg(name: str, value) -> dt.date:
    if isinstance(value, dt.datetime):
        raise InvalidArgument(f"{name} must be a date like '2024-01-01', got {value!r}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidArgument(f"{name} must be a date like '2024-01-01', got {value!r}")


# --------------------------------------------------------------------------------------- writers


class _Writer:
    """Streams tables of one schema into ``path`` (written under a temporary name until close)."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str, raw_json_columns=()):
        self.path = path
        self.tmp = path.with_name(path.name + ".partial")
        self.schema = schema
        self.fmt = fmt
        self.raw_json = tuple(raw_json_columns)
        self.rows = 0
        if fmt == "parquet":
            self._w = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        elif fmt == "csv":
            self._w = pacsv.CSVWriter(self.tmp, A.csv_schema(schema))
        else:
            self._f = open(self.tmp, "wb")

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        if table.num_rows == 0:
            return
        self.rows += table.num_rows
        if self.fmt == "parquet":
            self._w.write_table(table, row_group_size=1_000_000)
        elif self.fmt == "csv":
            self._w.write_table(A.table_to_csv_ready(table))
        else:
            for piece in A.table_to_jsonl(table, self.raw_json):
                self._f.write(piece)

    def close(self) -> None:
        if self.fmt in ("parquet", "csv"):
            self._w.close()
        else:
            self._f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            if self.fmt in ("parquet", "csv"):
                self._w.close()
            else:
                self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------- generate


def generate(
    out_dir,
    *,
    companies: int = 2,
    deals: int = 1000,
    seed: int = 0,
    fmt: str = "parquet",
    start: str = "2024-01-01",
    end: str = "2025-12-31",
    chunk_deals: int = 50_000,
    force: bool = False,
) -> GenerateSummary:
    """Write a synthetic CRM world to ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output folder, created if missing. A folder that already holds loadable files (named
        after a contract table, as ``crm-lab load`` reads a folder) or a ``truth.json`` is
        refused unless ``force``: loading it would mix two worlds.
    companies : int, default 2
        Number of tenants (``c1``, ``c2``, ...). Their ids collide on purpose.
    deals : int, default 1000
        Total number of deals, split unevenly between the companies. About half come from
        converted leads; the event log holds roughly ten events per deal.
    seed : int, default 0
        Seed of the random generator; the same arguments give byte-identical files.
    fmt : {"parquet", "csv", "jsonl"}, default "parquet"
        File format. Parquet uses decimal128(18, 2) for money and timestamp[us, tz=UTC]; CSV
        writes ISO 8601 timestamps with ``Z`` and money with two decimals; in JSON Lines the event
        payload is a JSON object (a JSON string column in Parquet and CSV).
    start, end : str or datetime.date, default "2024-01-01", "2025-12-31"
        First and last day (inclusive, UTC) of the simulated period. The export is taken at the
        end of ``end``: nothing happens after it and some deals are still open.
    chunk_deals : int, default 50000
        Deals simulated and written per step; memory is bounded by the chunk, not the world.
        Part of the arguments: a different chunk size gives a different (equally valid) world.
    force : bool, default False
        Replace a previous world in ``out_dir``: the generator's own files (``<table>.csv``,
        ``.parquet``, ``.jsonl`` and ``truth.json``) are removed first. Other loadable files are
        never removed: with them in the folder, generate still refuses.

    Returns
    -------
    GenerateSummary
        Paths, row counts per table and the event count.

    Raises
    ------
    ValueError
        For an invalid argument; the message names the parameter and the bad value.

    Notes
    -----
    Randomness comes from ``numpy.random.SeedSequence(seed)``, spawned per company and per chunk.
    ``truth.json`` holds the arguments, the per-company counts and every generating parameter:
    per-stage advance and win probabilities, stage duration distributions, push (slip) and
    amount-change distributions, reopen and delete rates, the lead conversion logistic model
    and the arrival seasonality.
    """
    companies = _int_arg("companies", companies, 1)
    deals = _int_arg("deals", deals, 1)
    seed = _int_arg("seed", seed, 0)
    chunk_deals = _int_arg("chunk_deals", chunk_deals, 1)
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise InvalidArgument(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    start_d = _date_arg("start", start)
    end_d = _date_arg("end", end)
    if end_d < start_d:
        raise InvalidArgument(f"end must not be before start ({start_d.isoformat()}), got {end_d.isoformat()!r}")
    try:
        out = Path(out_dir)
    except TypeError:
        raise InvalidArgument(f"out_dir must be a path, got {out_dir!r}") from None
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a directory, got {str(out)!r} (a file)")
    if out.is_dir():
        _clear_previous_world(out, force)
    out.mkdir(parents=True, exist_ok=True)

    epoch = dt.date(1970, 1, 1)
    win = W.Window.make((start_d - epoch).days, (end_d - epoch).days, W.PARAMS["arrivals"])
    ext = FORMATS[fmt]
    files = {t: out / f"{t}.{ext}" for t in LOADABLE_TABLES}
    schemas = {t: arrow_schema(t) for t in LOADABLE_TABLES}
    writers: dict[str, _Writer] = {}
    try:
        for t in LOADABLE_TABLES:
            raw = ("payload",) if t == EVENT_TABLE else ()
            writers[t] = _Writer(files[t], schemas[t], fmt, raw)
        per_company = _run(writers, win, companies, deals, seed, chunk_deals)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.close()

    rows = {t: w.rows for t, w in writers.items()}
    truth = {
        "generator": "crm_lab.generate",
        "truth_version": 1,
        "arguments": {
            "companies": companies,
            "deals": deals,
            "seed": seed,
            "fmt": fmt,
            "start": start_d.isoformat(),
            "end": end_d.isoformat(),
            "chunk_deals": chunk_deals,
        },
        "export_at": dt.datetime.fromtimestamp(win.t1, dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "companies": per_company,
        "rows": rows,
        "win_probability_from_stage": W.win_probability_from_stage(),
        "parameters": W.PARAMS,
    }
    truth_path = out / TRUTH_FILE
    tmp = truth_path.with_name(TRUTH_FILE + ".partial")
    tmp.write_text(json.dumps(truth, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, truth_path)
    return GenerateSummary(
        out_dir=out, files=files, rows=rows, events=rows[EVENT_TABLE], truth=truth_path, fmt=fmt,
        generated={t: sum(int(c.get(t, 0)) for c in per_company) for t in DELETABLE},
    )


# Aggregates the generator deletes with a `deleted` event: they are counted in truth.json's
# per-company stats but have no row in their table (their events stay in the log).
DELETABLE = ("leads", "deals")


def _previous_world(out: Path) -> tuple[list[Path], list[Path]]:
    """Files in ``out`` that would mix with a new world: (the generator's own: ``<table>.<ext>``
    of a generator format and ``truth.json``; other loadable files, e.g. ``deals.part-2.parquet``)."""
    from crm_lab.sources import FORMATS as LOAD_FORMATS, table_for

    own_names = {f"{t}.{ext}" for t in LOADABLE_TABLES for ext in FORMATS.values()} | {TRUTH_FILE}
    own, other = [], []
    for child in sorted(out.iterdir()):
        if child.name.startswith(".") or not child.is_file():
            continue
        if child.name in own_names:
            own.append(child)
        elif child.suffix.lower() in LOAD_FORMATS and table_for(child) is not None:
            other.append(child)
    return own, other


def _names(paths: list[Path], most: int = 12) -> str:
    names = [p.name for p in paths]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _clear_previous_world(out: Path, force: bool) -> None:
    """Refuse to write a world beside another one's files; with ``force``, remove the
    generator's own files first (never anything else)."""
    own, other = _previous_world(out)
    if not force and (own or other):
        raise InvalidArgument(
            f"out_dir {out} already holds {_names(own + other)}: loading the folder would mix that world with the new one; "
            "generate into a new folder, or pass --force (force=True in Python) to replace the generator's files"
        )
    if other:
        raise InvalidArgument(
            f"out_dir {out} holds loadable files that crm-lab generate did not write ({_names(other)}): loading the folder "
            "would mix them with the new world; move them away or generate into a new folder"
        )
    for path in own:
        path.unlink()


def _run(writers, win, companies, deals, seed, chunk_deals) -> list[dict]:
    root = np.random.SeedSequence(seed)
    split_ss, *company_ss = root.spawn(companies + 1)
    counts = W.deal_split(np.random.default_rng(split_ss), deals, companies)
    per_company = []
    for c in range(companies):
        n_c = int(counts[c])
        n_chunks = max(1, math.ceil(n_c / chunk_deals))
        world_ss, *chunk_ss = company_ss[c].spawn(n_chunks + 1)
        rng = np.random.default_rng(world_ss)
        co, tables = W.build_company(rng, c, n_c, win)
        for name, tbl in tables.items():
            writers[name].write(tbl)
        counter = 0
        for accounts, contacts, account_events in W.account_slices(rng, co):
            writers["accounts"].write(accounts)
            writers["contacts"].write(contacts)
            ev, counter = W.finish_events(rng, co, [account_events], counter)
            if ev is not None:
                writers[EVENT_TABLE].write(ev)
            del accounts, contacts, account_events, ev
        offsets = {"deal": 0, "lead": 0, "activity": 0}
        stats_total: dict[str, int] = {}
        for k in range(n_chunks):
            n = min(chunk_deals, n_c - k * chunk_deals)
            crng = np.random.default_rng(chunk_ss[k])
            tables, parts, stats = W.simulate_chunk(crng, co, n, offsets)
            offsets = stats.pop("offsets")
            for name, tbl in tables.items():
                writers[name].write(tbl)
            del tables
            ev, counter = W.finish_events(crng, co, parts, counter)
            del parts
            if ev is not None:
                writers[EVENT_TABLE].write(ev)
            del ev
            for key, val in stats.items():
                stats_total[key] = stats_total.get(key, 0) + int(val)
        per_company.append(
            {
                "company_id": co.company_id,
                "name": co.name,
                "currency": co.currency,
                "utc_offset_hours": co.utc_offset_hours,
                "territories": len(co.terr_lat),
                "reps": len(co.rep_terr),
                "accounts": len(co.acc_created),
                "events": counter,
                **stats_total,
            }
        )
    return per_company
