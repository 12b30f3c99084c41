"""Events from a staged, envelope-typed file into ``events`` (or ``events_rejected``).

Done once here so that replay never parses JSON: each payload is validated, its known fields are
cast into typed columns, the keys it sets are listed (a JSON null clears a field, a missing key
leaves it alone), duplicates are told apart by a content hash, and every aggregate touched gets
its events renumbered in (occurred_at, seq, event_id) order as one integer ``order_key``."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from crm_lab.contract import AGGREGATES, EVENT_INPUT_COLUMNS, PAYLOAD_FIELD_TYPES
from crm_lab.schema import table_spec
from crm_lab.typing_checks import FRIENDLY_TYPES, quote_literal

ORDER = "occurred_at, seq NULLS LAST, event_id"
AGGREGATE_KEY = ("company_id", "aggregate_type", "aggregate_id")


@dataclass(frozen=True)
class EventCounts:
    new: int
    duplicate: int
    quarantined: int


def ingest(con: duckdb.DuckDBPyConnection, load_id: int, source_table: str) -> EventCounts:
    """Move the envelope-valid rows of ``source_table`` (columns: _line + the contract's event
    columns, payload as text) into the event log, dropping ``source_table`` once it is read.
    Runs inside the caller's transaction."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _events_parsed AS {_parse_sql(source_table)}")
    con.execute(f"DROP TABLE {source_table}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _events_judged AS {_judge_sql()}")
    con.execute("DROP TABLE _events_parsed")
    con.execute(
        f"""INSERT INTO events_rejected
            SELECT {', '.join(EVENT_INPUT_COLUMNS[:-1])}, _ptext, _reason, 'load', {int(load_id)}, content_hash
            FROM _events_judged WHERE _outcome = 'quarantine' ORDER BY _line"""
    )
    _append_with_order_keys(con, load_id)
    counts = dict(con.sql("SELECT _outcome, count(*) FROM _events_judged GROUP BY ALL").fetchall())
    for name in ("_events_judged", "_events_touched"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return EventCounts(counts.get("new", 0), counts.get("duplicate", 0), counts.get("quarantine", 0))


def _parse_sql(source_table: str) -> str:
    fields = list(PAYLOAD_FIELD_TYPES)
    paths = ", ".join(quote_literal(f"$.{name}") for name in fields)
    typed = []
    present = []
    type_checks = []
    for index, (name, sql_type) in enumerate(PAYLOAD_FIELD_TYPES.items(), start=1):
        value = f"_vals[{index}]"
        cast = f"TRY_CAST({value} ->> '$' AS {sql_type})"
        typed.append(f"{cast} AS {name}")
        present.append(f"CASE WHEN {value} IS NOT NULL THEN {quote_literal(name)} END")
        wanted = quote_literal(f"wrongly typed payload: field {name} is not {FRIENDLY_TYPES.get(sql_type, sql_type)}, got ")
        type_checks.append(
            f"WHEN {value} IS NOT NULL AND json_type({value}) <> 'NULL' "
            f"AND (json_type({value}) IN ('OBJECT', 'ARRAY') OR {cast} IS NULL) "
            f"THEN {wanted} || CAST({value} AS VARCHAR)"
        )
    known_types = ", ".join(quote_literal(name) for name in sorted(AGGREGATES))
    allowed = " ".join(
        f"WHEN aggregate_type = {quote_literal(name)} AND event_type NOT IN "
        f"({', '.join(quote_literal(t) for t in aggregate.event_types)}) "
        f"THEN 'unknown event type ' || '''' || event_type || '''' || ' for a {name}'"
        for name, aggregate in AGGREGATES.items()
    )
    envelope = ", ".join(EVENT_INPUT_COLUMNS[:-1])
    return f"""
        WITH texts AS (
            SELECT _line, {envelope}, coalesce(CAST(payload AS VARCHAR), '{{}}') AS _ptext
            FROM {source_table}
        ), objects AS (
            SELECT *, CASE WHEN json_valid(_ptext) THEN json_type(_ptext) END AS _ptype FROM texts
        ), valued AS (
            SELECT *, CASE WHEN _ptype = 'OBJECT' THEN json_extract(_ptext, [{paths}]) END AS _vals FROM objects
        )
        SELECT _line, {envelope}, _ptext,
            hash(company_id, aggregate_type, aggregate_id, seq, event_type, occurred_at, actor_id,
                 CASE WHEN _ptype IS NOT NULL THEN CAST(json(_ptext) AS VARCHAR) ELSE _ptext END) AS content_hash,
            CASE
                WHEN _ptype IS NULL THEN 'malformed payload: not valid JSON'
                WHEN _ptype <> 'OBJECT' THEN 'malformed payload: a JSON ' || CASE _ptype
                    WHEN 'VARCHAR' THEN 'string' WHEN 'ARRAY' THEN 'array' WHEN 'BOOLEAN' THEN 'boolean'
                    WHEN 'NULL' THEN 'null' ELSE 'number' END || ', not an object'
                WHEN aggregate_type NOT IN ({known_types})
                    THEN 'unknown aggregate type ' || '''' || aggregate_type || '''' || ' (known: ' || {quote_literal(', '.join(sorted(AGGREGATES)))} || ')'
                {allowed}
                {' '.join(type_checks)}
            END AS _static_reason,
            list_filter([{', '.join(present)}], lambda k: k IS NOT NULL) AS payload_keys,
            CASE WHEN _ptype = 'OBJECT' THEN CAST(json(_ptext) AS JSON) END AS payload,
            {', '.join(typed)}
        FROM valued
    """


def _judge_sql() -> str:
    return """
        WITH firsts AS (
            SELECT p.*,
                min(_line) OVER same_id AS _first_line,
                arg_min(content_hash, _line) OVER same_id AS _first_hash
            FROM _events_parsed p
            WINDOW same_id AS (PARTITION BY company_id, event_id)
        ), matched AS (
            SELECT f.*, stored.content_hash AS _stored_hash, stored.load_id AS _stored_load,
                EXISTS (
                    SELECT 1 FROM events_rejected q
                    WHERE q.company_id = f.company_id AND q.event_id = f.event_id
                      AND q.content_hash = f.content_hash AND q.detected_by = 'load'
                ) AS _already_quarantined
            FROM firsts f
            LEFT JOIN events stored ON stored.company_id = f.company_id AND stored.event_id = f.event_id
        )
        SELECT *,
            CASE
                WHEN _stored_hash = content_hash OR _already_quarantined THEN 'duplicate'
                WHEN _stored_hash IS NOT NULL THEN 'quarantine'
                WHEN _line <> _first_line AND content_hash = _first_hash THEN 'duplicate'
                WHEN _line <> _first_line THEN 'quarantine'
                WHEN _static_reason IS NOT NULL THEN 'quarantine'
                ELSE 'new'
            END AS _outcome,
            CASE
                WHEN _stored_hash IS NOT NULL AND _stored_hash <> content_hash
                    THEN 'conflicting duplicate event_id: differs from the event stored by load ' || _stored_load
                WHEN _line <> _first_line AND content_hash <> _first_hash
                    THEN 'conflicting duplicate event_id: differs from line ' || _first_line || ' of the same file'
                ELSE _static_reason
            END AS _reason
        FROM matched
    """


def _append_with_order_keys(con: duckdb.DuckDBPyConnection, load_id: int) -> None:
    """Insert the new events, renumbering every touched aggregate: a late event shifts the
    order_key of the events after it. Moving the touched aggregates' old rows out and back in
    is cheaper in DuckDB than updating them in place."""
    columns = [c.name for c in table_spec("events").columns]
    key = ", ".join(AGGREGATE_KEY)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _events_touched AS "
        f"SELECT DISTINCT {key} FROM _events_judged WHERE _outcome = 'new'"
    )
    stored_touched = con.sql(
        f"SELECT count(*) FROM events e SEMI JOIN _events_touched t USING ({key})"
    ).fetchall()[0][0]
    new_rows = ", ".join(
        f"{int(load_id)} AS load_id" if c == "load_id" else "NULL::BIGINT AS order_key" if c == "order_key" else c
        for c in columns
    )
    select_new = f"SELECT {new_rows} FROM _events_judged WHERE _outcome = 'new'"
    if stored_touched:
        select_all = f"SELECT e.* FROM events e SEMI JOIN _events_touched t USING ({key}) UNION ALL {select_new}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _events_rekey AS {select_all}")
        con.execute(
            "DELETE FROM events USING _events_touched t WHERE "
            + " AND ".join(f"events.{k} = t.{k}" for k in AGGREGATE_KEY)
        )
        source = "_events_rekey"
    else:
        source = f"({select_new})"
    renumbered = ", ".join(
        f"row_number() OVER (PARTITION BY {key} ORDER BY {ORDER}) AS order_key" if c == "order_key" else c
        for c in columns
    )
    con.execute(f"INSERT INTO events SELECT {renumbered} FROM {source}")
    con.execute("DROP TABLE IF EXISTS _events_rekey")
