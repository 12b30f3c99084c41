"""The conversion every importer shares: dated field changes of foreign records into the
native event log.

A reader (Salesforce, a mapped spreadsheet) writes one row per field set at an instant into a
``changes`` table: ``aggregate_id, occurred_at, rank, event_id, actor_id, _file, _line, field,
value`` (``field`` is a native payload field, or ``_deleted``). Here the changes fold into the
record's full state after each instant (an instant's changes together, as one CRM save), and
consecutive states differ into events: the first state is ``created``; a move into a closing
value (stage ``closed_won``) is its lifecycle event (``won``); out of one, ``reopened``; other
differences are the patch event of the most telling field changed (``stage_changed`` before
``amount_changed`` ...). Each event carries the first source row of its instant: its id (so a
second import of the same export is a no-op) and its file and line (so rejects point there)."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from crm_lab.contract import AGGREGATES, PAYLOAD_FIELD_TYPES
from crm_lab.importers.stages import CLOSED_STAGES_SQL
from crm_lab.typing_checks import quote_ident, quote_literal

CHANGE_COLUMNS = "aggregate_id VARCHAR, occurred_at TIMESTAMPTZ, rank INTEGER, event_id VARCHAR, actor_id VARCHAR, _file VARCHAR, _line BIGINT, field VARCHAR, value VARCHAR"


@dataclass(frozen=True)
class Lifecycle:
    """How an aggregate's state differences read as events."""

    aggregate: str
    status_field: str | None = None
    closing: dict[str, str] = field(default_factory=dict)  # status value -> lifecycle event
    reopen_event: str | None = None
    patch_events: tuple[tuple[str, str], ...] = ()  # (field, event) by precedence; else 'updated'


LIFECYCLES = {
    "deal": Lifecycle(
        "deal",
        "stage",
        {"closed_won": "won", "closed_lost": "lost"},
        "reopened",
        (
            ("stage", "stage_changed"),
            ("amount", "amount_changed"),
            ("expected_close_date", "close_date_changed"),
            ("owner_rep_id", "owner_changed"),
        ),
    ),
    "lead": Lifecycle("lead", "status", {"converted": "converted", "disqualified": "disqualified"}, None, (("owner_rep_id", "owner_changed"),)),
    "account": Lifecycle("account", patch_events=(("owner_rep_id", "owner_changed"),)),
    "activity": Lifecycle("activity"),
}


def changes_table(aggregate: str) -> str:
    return f"_import_{aggregate}_changes"


def create_changes(con: duckdb.DuckDBPyConnection) -> None:
    for aggregate in LIFECYCLES:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {changes_table(aggregate)} ({CHANGE_COLUMNS})")


def add_changes(
    con: duckdb.DuckDBPyConnection,
    aggregate: str,
    source: str,
    values: dict[str, str],
    *,
    where: str = "TRUE",
    **envelope: str,
) -> None:
    """Append the changes of each row of ``source``: one per entry of ``values`` (native field ->
    SQL value; the field ``*`` takes its name from the row's ``native`` column instead).
    ``envelope`` gives SQL for aggregate_id, occurred_at, rank, event_id, actor_id, _file and
    _line. Rows with no instant are skipped (the reader checked its dates)."""
    names = ", ".join("native" if name == "*" else quote_literal(name) for name in values)
    texts = ", ".join(f"CAST({sql} AS VARCHAR)" for sql in values.values())
    columns = ("aggregate_id", "occurred_at", "rank", "event_id", "actor_id", "_file", "_line")
    head = ", ".join(f"{envelope.get(c, 'NULL')} AS {c}" for c in columns)
    con.execute(
        f"INSERT INTO {changes_table(aggregate)} SELECT * FROM (SELECT {head}, unnest([{names}]) AS field, "
        f"unnest([{texts}]) AS value FROM {source} WHERE {where}) WHERE occurred_at IS NOT NULL AND aggregate_id IS NOT NULL"
    )


def derive_events(con: duckdb.DuckDBPyConnection, company: str, target: str = "_import_events") -> None:
    """Fold every aggregate's changes into ``target``: the ten contract columns as text, plus
    ``_file`` and ``_line`` of the source row."""
    parts = [f"SELECT * FROM ({_events_sql(LIFECYCLES[a], company)})" for a in LIFECYCLES]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS {' UNION ALL '.join(parts)}")


def _states_sql(lifecycle: Lifecycle) -> str:
    fields = AGGREGATES[lifecycle.aggregate].fields
    filled = ",\n".join(
        f"TRY_CAST(arg_max_null(CASE WHEN field = {quote_literal(f)} THEN value END, "
        f"CASE WHEN field = {quote_literal(f)} THEN k END) OVER upto AS {PAYLOAD_FIELD_TYPES[f]}) AS {quote_ident(f)}"
        for f in fields
    )
    firsts = ", ".join(f"first_value({c}) OVER instant AS {c}" for c in ("event_id", "actor_id", "_file", "_line"))
    return f"""
        SELECT aggregate_id, occurred_at, {firsts},
            {filled},
            bool_or(field = '_deleted') OVER upto AS _deleted,
            lead(occurred_at) OVER (PARTITION BY aggregate_id ORDER BY k) AS _next_at
        FROM (SELECT *, row_number() OVER (PARTITION BY aggregate_id ORDER BY occurred_at, rank, event_id, field) AS k
              FROM {changes_table(lifecycle.aggregate)})
        WINDOW upto AS (PARTITION BY aggregate_id ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
               instant AS (PARTITION BY aggregate_id, occurred_at ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    """


def _events_sql(lifecycle: Lifecycle, company: str) -> str:
    fields = AGGREGATES[lifecycle.aggregate].fields
    status = lifecycle.status_field
    closing_values = ", ".join(quote_literal(v) for v in lifecycle.closing) or "NULL"
    is_closing = f"({quote_ident(status)} IN ({closing_values}))" if status else "false"
    was_closing = f"(_prev_{status} IN ({closing_values}))" if status else "false"
    lags = ", ".join(f"lag({quote_ident(f)}) OVER by_time AS _prev_{f}" for f in fields)
    changed = {f: f"({quote_ident(f)} IS DISTINCT FROM _prev_{f})" for f in fields}
    kinds = ["WHEN _n = 1 THEN 'created'", "WHEN _deleted THEN 'deleted'"]
    kinds += [
        f"WHEN {quote_ident(status)} = {quote_literal(value)} AND _prev_{status} IS DISTINCT FROM {quote_literal(value)} THEN {quote_literal(event)}"
        for value, event in lifecycle.closing.items()
    ]
    if lifecycle.reopen_event:
        kinds.append(f"WHEN {was_closing} AND NOT {is_closing} THEN {quote_literal(lifecycle.reopen_event)}")
    kinds += [f"WHEN {changed[f]} THEN {quote_literal(event)}" for f, event in lifecycle.patch_events]
    kind = "CASE " + " ".join(kinds) + " ELSE 'updated' END"

    def payload(included: dict[str, str]) -> str:
        members = ", ".join(
            f"CASE WHEN {condition} THEN '\"{f}\":' || coalesce(CAST(to_json({quote_ident(f)}) AS VARCHAR), 'null') END"
            for f, condition in included.items()
        )
        return f"'{{' || concat_ws(',', {members}) || '}}'"

    # created: every field it has (the closing status comes as its own lifecycle event);
    # a lifecycle event: what changed besides the status it sets; deleted: nothing.
    created = {f: f"{quote_ident(f)} IS NOT NULL" + (f" AND NOT {is_closing}" if f == status else "") for f in fields}
    lifecycle_events = ", ".join(quote_literal(e) for e in lifecycle.closing.values()) or "NULL"
    later = {f: changed[f] + (f" AND _kind NOT IN ({lifecycle_events})" if f == status else "") for f in fields}
    any_change = " OR ".join(changed.values())
    envelope = (
        f"{quote_literal(company)} AS company_id, {quote_literal(lifecycle.aggregate)} AS aggregate_type, aggregate_id"
    )
    closing_case = "CASE " + " ".join(
        f"WHEN {quote_ident(status)} = {quote_literal(value)} THEN {quote_literal(event)}" for value, event in lifecycle.closing.items()
    ) + " END" if status and lifecycle.closing else "NULL"
    return f"""
        WITH states AS ({_states_sql(lifecycle)}),
        instants AS (SELECT * FROM states WHERE _next_at IS DISTINCT FROM occurred_at),
        differenced AS (
            SELECT *, row_number() OVER by_time AS _n, lag(_deleted) OVER by_time AS _prev_deleted, {lags}
            FROM instants WINDOW by_time AS (PARTITION BY aggregate_id ORDER BY occurred_at)
        ),
        kinded AS (
            SELECT *, {kind} AS _kind FROM differenced
            WHERE NOT coalesce(_prev_deleted, false) AND (_n = 1 OR _deleted OR {any_change})
        )
        SELECT event_id, {envelope}, CAST(2 * _n AS VARCHAR) AS seq, _kind AS event_type,
               CAST(occurred_at AS VARCHAR) AS occurred_at, CAST(NULL AS VARCHAR) AS recorded_at, actor_id,
               CASE _kind WHEN 'created' THEN {payload(created)} WHEN 'deleted' THEN '{{}}' ELSE {payload(later)} END AS payload,
               _file, _line
        FROM kinded
        UNION ALL
        SELECT event_id || ':closed', {envelope}, CAST(2 * _n + 1 AS VARCHAR), {closing_case},
               CAST(occurred_at AS VARCHAR), NULL, actor_id, '{{}}', _file, _line
        FROM kinded WHERE _n = 1 AND {is_closing}
    """


def add_dated_deal_changes(
    con: duckdb.DuckDBPyConnection, source: str, *, where: str, event_id: str, file: str, initial_stage: str
) -> None:
    """Changes for deals known only by their current state and two dates: created at
    ``created_at`` in their stage (``initial_stage`` when they are closed by now), and closed
    at ``closes_at`` (never before their creation) in their closed stage with their lost reason.
    ``source`` has the deal's native fields plus ``created_at``, ``closes_at`` and ``_line``."""
    closed = f"d.stage IN {CLOSED_STAGES_SQL}"
    add_changes(
        con, "deal", f"{source} d",
        {"account_id": "d.account_id", "owner_rep_id": "d.owner_rep_id", "name": "d.name",
         "stage": f"CASE WHEN {closed} THEN {quote_literal(initial_stage)} ELSE d.stage END",
         "amount": "d.amount", "currency": "d.currency", "expected_close_date": "d.expected_close_date"},
        where=where, aggregate_id="d.deal_id", occurred_at="d.created_at", rank="0", actor_id="d.owner_rep_id",
        event_id=event_id, _file=file, _line="d._line",
    )  # fmt: skip
    add_changes(
        con, "deal", f"{source} d", {"stage": "d.stage", "lost_reason": "d.lost_reason"},
        where=f"({where}) AND {closed}", aggregate_id="d.deal_id", occurred_at="greatest(d.closes_at, d.created_at)",
        rank="1", actor_id="d.owner_rep_id", event_id=f"{event_id} || ':closed'", _file=file, _line="d._line",
    )  # fmt: skip
