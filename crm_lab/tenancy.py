"""Read-only workbench connections, optionally scoped to one company.

A workbench connection is an in-memory DuckDB that attaches the workbench file read-only and
defines a view under every table's name (for a company: only that company's rows); the public
views and macros are then created again on top of those views, so ``deals_as_of``,
``pipeline_movement`` and the rest answer for that company only. Being in memory, the session can
also hold notebook parameters (:func:`set_parameters`) that SQL reads with ``param('name')``.

Everything lives in the in-memory database, not in session state, because jupysql runs queries
on ``cursor()`` connections, which share the database but not the session. The company is
checked against the companies the file holds before it is written into the view definitions,
so only a known company id ever reaches SQL text.

Scoping keeps an analyst's queries inside one tenant; it is not a security boundary (the
attached file stays reachable by its qualified name ``workbench.main.<table>``)."""

from __future__ import annotations

import os
import re
from importlib.resources import files
from pathlib import Path

import duckdb

from crm_lab.db import DEFAULT_DB, connect, retry_while_locked
from crm_lab.errors import InvalidArgument

ATTACHED = "workbench"
# SQL files that define public views and macros over the tables, re-created in every session.
PUBLIC_VIEW_FILES = ("replay/views.sql",)
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VIEW_OR_MACRO = re.compile(r"^CREATE OR REPLACE (?:VIEW|MACRO) (\w+)", re.MULTILINE)

# The public tables of docs/SQL.md and the command that makes each (tests check this against the
# tables each command writes and against the reference). The views and macros of
# PUBLIC_VIEW_FILES are made by replay too: see public_names().
PUBLIC_TABLES = {
    **dict.fromkeys(("companies", "territories", "reps", "accounts", "contacts", "leads", "deals", "activities",
                     "products", "events", "load_runs", "load_rejects", "events_rejected"), "load"),
    **dict.fromkeys(("deal_history", "lead_history", "account_history", "pipeline_snapshots",
                     "pipeline_period_ends", "replay_runs"), "replay"),
    **dict.fromkeys(("forecast_runs", "forecast_summary", "forecast_deals", "forecast_backtest"), "forecast"),
    **dict.fromkeys(("lead_sweep_runs", "lead_sweeps"), "sweep-leads"),
    **dict.fromkeys(("territory_plans", "territory_assignments", "territory_plan_reps"), "territory"),
    "report_runs": "batch",
}
# Run records whose NULL company_id is a run over every company: a company session keeps those
# too, since their rows for the company (forecast_summary, lead_sweeps ...) join them by run_id.
RUNS_OVER_EVERY_COMPANY = ("forecast_runs", "lead_sweep_runs")
# What a missing public name's message says after "NAME is made by" (DB is the database path).
_MADE_BY = {
    "load": "`crm-lab load`, which has not run on {db} yet: run `crm-lab load --db {db} FILES` first",
    "replay": "`crm-lab replay`, which has not run on {db} yet: run `crm-lab replay --db {db}` first",
    "forecast": "`crm-lab forecast` or `crm-lab backtest`, neither of which has run on {db} yet: "
                "run `crm-lab forecast --db {db} ...` first (see `crm-lab forecast --help`)",
}
_MADE_BY_ENGINE = "`crm-lab {command}`, which has not run on {db} yet: run `crm-lab {command} --db {db} ...` first " \
                  "(see `crm-lab {command} --help`)"


def open_connection(db_path: str | os.PathLike = DEFAULT_DB, company: str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only workbench connection, scoped to ``company`` when given."""
    if company is not None and (not isinstance(company, str) or not company):
        raise InvalidArgument(f"company must be a non-empty company_id, got {company!r}")
    if not Path(db_path).exists():
        connect(db_path, read_only=True)  # raises DatabaseMissingError with what to do
    con = duckdb.connect()
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    retry_while_locked(lambda: con.execute(f"ATTACH ? AS {ATTACHED} (READ_ONLY)", [str(db_path)]), Path(db_path))
    tables = [
        (name, has_company)
        for name, has_company in con.sql(
            "SELECT table_name, bool_or(column_name = 'company_id') FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = 'main' AND NOT internal "
            "AND table_name IN (SELECT table_name FROM duckdb_tables() WHERE database_name = ?) "
            "GROUP BY ALL ORDER BY 1",
            params=[ATTACHED, ATTACHED],
        ).fetchall()
    ]
    if company is not None:
        _check_known(con, company, {name for name, _ in tables}, db_path)
    for table, has_company in tables:
        source_name = f'{ATTACHED}.main."{table}"'
        if company is None:
            con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM {source_name}')
        elif has_company:
            # `company` is one of the ids the file holds (checked above), so quoting it is safe.
            literal = "'" + company.replace("'", "''") + "'"
            spanning = " OR company_id IS NULL" if table in RUNS_OVER_EVERY_COMPANY else ""
            con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM {source_name} WHERE company_id = {literal}{spanning}')
        # Tables without company_id (load_runs, load_rejects, replay_runs) span tenants: not shown.
    con.execute("CREATE TABLE crm_lab_parameters (name VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("CREATE MACRO param(parameter_name) AS (SELECT value FROM crm_lab_parameters WHERE name = parameter_name)")
    if any(name == "deal_history" for name, _ in tables):
        for relative in PUBLIC_VIEW_FILES:
            con.execute((files("crm_lab") / "sql" / relative).read_text(encoding="utf-8"))
    return con


def set_parameters(con: duckdb.DuckDBPyConnection, **values) -> None:
    """Store values for SQL to read as ``param('name')`` (text; cast where used). They are bound,
    never formatted into a query, and visible to jupysql's cursors."""
    for name, value in values.items():
        if not PARAMETER_NAME.fullmatch(name):
            raise InvalidArgument(f"parameter names are letters, digits and underscores, got {name!r}")
        con.execute("INSERT OR REPLACE INTO crm_lab_parameters VALUES (?, CAST(? AS VARCHAR))", [name, value])


def _check_known(con: duckdb.DuckDBPyConnection, company: str, tables: set[str], db_path) -> None:
    sources = [f"SELECT company_id FROM {ATTACHED}.main.{t}" for t in ("companies", "events") if t in tables]
    known = set()
    if sources:
        known = {c for (c,) in con.sql(" UNION ".join(sources)).fetchall()}
    if company not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise InvalidArgument(f"company {company!r} is not in {db_path}: known companies are {listed}")


def public_view_names() -> tuple[str, ...]:
    """The public views and table macros (deals_current, deals_as_of, pipeline_movement, ...)."""
    return tuple(
        name
        for relative in PUBLIC_VIEW_FILES
        for name in _VIEW_OR_MACRO.findall((files("crm_lab") / "sql" / relative).read_text(encoding="utf-8"))
    )


def public_names() -> dict[str, str]:
    """Every public name of the workbench database (docs/SQL.md) and the crm-lab command that makes it."""
    return {**PUBLIC_TABLES, **dict.fromkeys(public_view_names(), "replay")}


_MISSING_NAME = re.compile(
    r'^Catalog Error: (?P<kind>[A-Za-z ]+?) with name (?P<name>[^ ]+) does not exist!(?P<rest>.*)\Z', re.DOTALL
)
_SUGGESTION = re.compile(r'\s*Did you mean "(?P<hint>[^"]+)"\?', re.DOTALL)


def explain_error(con: duckdb.DuckDBPyConnection, message: str, db_path, company: str | None) -> str:
    """DuckDB's error ``message`` from a workbench session, with a missing public name explained and
    hints that lead outside the session dropped.

    A public name that is missing is made by a command that has not run yet (say which), or, in a
    company session, spans companies. DuckDB's "Did you mean" may point at the attached file
    (``workbench.load_runs``, outside the company scope) or at system tables (``pg_enum``): such a
    hint is dropped, and one naming something the session has is kept."""
    message = message.strip()
    missing = _MISSING_NAME.match(message)
    if not missing:
        return message
    name, rest = missing.group("name"), missing.group("rest")
    if company is not None and _in_file(con, name):
        return (
            f"{name} spans all companies, so it is not available in a session for company {company}: "
            "query it without --company (in Python: open_workbench without company)"
        )
    command = public_names().get(name)
    if command is not None:
        made_by = _MADE_BY.get(command, _MADE_BY_ENGINE)
        return f"{name} is made by " + made_by.format(db=db_path, command=command)
    suggestion = _SUGGESTION.match(rest)
    head = message[: missing.start("rest")]
    if suggestion and _in_session(con, suggestion.group("hint"), missing.group("kind")):
        return message
    return f"{head} (docs/SQL.md lists the workbench's tables, views and macros)"


def _in_file(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.sql(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' AND table_name = ?",
        params=[ATTACHED, name],
    ).fetchall()[0][0])


def _in_session(con: duckdb.DuckDBPyConnection, hint: str, kind: str) -> bool:
    """Whether DuckDB's suggestion names something reachable without leaving the session: one of
    its own views, tables or macros, or (for a function) a built-in one."""
    if "." in hint:
        return False
    if "Function" in kind:
        return bool(con.sql(
            "SELECT count(*) FROM duckdb_functions() WHERE function_name = ? "
            "AND (database_name = current_database() OR database_name = 'system')",
            params=[hint],
        ).fetchall()[0][0])
    return bool(con.sql(
        "SELECT count(*) FROM (SELECT view_name AS name FROM duckdb_views() WHERE database_name = current_database() "
        "AND NOT internal UNION ALL SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()) "
        "WHERE name = ?",
        params=[hint],
    ).fetchall()[0][0])
