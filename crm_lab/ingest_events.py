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
from crm_lab.typing_checks import FRIENDLY_TYPES, quote_literal, rounded_text_sql

ORDER = "occurred_at, seq NULLS LAST, event_id"
AGGREGATE_KEY = ("company_id", "aggregate_type", "aggregate_id")


@dataclass(frozen=True)
class EventCounts:
    new: int
    duplicate: int
    quarantined: int


def parse(con: duckdb.DuckDBPyConnection, checked_sql: str, table: str) -> None:
    """Materialise ``checked_sql`` (columns: _line, the contract's event columns typed, payload as
    text, and the envelope's ``_errors``) into ``table`` with the payload validated and parsed and
    the content hashed, in one pass. One table instead of one per step: at a million events each
    intermediate copy costs about as much as the work done in it."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {_parse_sql(checked_sql)}")


def ingest(con: duckdb.DuckDBPyConnection, load_id: int, parsed_table: str) -> EventCounts:
    """Move the envelope-valid rows (no ``_errors``) of ``parsed_table``, made by :func:`parse`,
    into the event log. Runs inside the caller's transaction; the caller drops ``parsed_table``."""
    # _row: the row's identity, for the order-key join (_line need not be unique: an importer may
    # make several events out of one line of its export).
    valid = f"SELECT *, rowid AS _row FROM {parsed_table} WHERE len(_errors) = 0"
    first_arrival = _first_arrival(con, parsed_table)
    if first_arrival:
        # Nothing stored for these companies and no event_id twice in the file: the duplicate
        # window and the join with stored events would find nothing, so a valid row is new unless
        # its own content quarantines it. A view: the rows are read once more by each step below.
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW _events_judged AS
                SELECT *, CASE WHEN _static_reason IS NULL THEN 'new' ELSE 'quarantine' END AS _outcome,
                       _static_reason AS _reason
                FROM ({valid})"""
        )
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _events_judged AS {_judge_sql(valid)}")
    con.execute(
        f"""INSERT INTO events_rejected
            SELECT {', '.join(EVENT_INPUT_COLUMNS[:-1])}, _ptext, _reason, 'load', {int(load_id)}, content_hash
            FROM _events_judged WHERE _outcome = 'quarantine' ORDER BY _line"""
    )
    _append_with_order_keys(con, load_id, stored_may_be_touched=not first_arrival)
    counts = dict(con.sql("SELECT _outcome, count(*) FROM _events_judged GROUP BY ALL").fetchall())
    con.execute(f"DROP {'VIEW' if first_arrival else 'TABLE'} _events_judged")
    return EventCounts(counts.get("new", 0), counts.get("duplicate", 0), counts.get("quarantine", 0))


def _first_arrival(con: duckdb.DuckDBPyConnection, parsed_table: str) -> bool:
    """True when no valid row can be a duplicate: the database holds no event (stored or
    quarantined at load) of the file's companies, and no (company_id, event_id) repeats in it.
    Counting distinct ids is far cheaper than the window that finds which ones repeat, and
    counting distinct hashes of them cheaper still; a hash collision only sends the load down the
    general path, which finds the true repeats."""
    (stored, repeats), = con.sql(
        f"""WITH valid AS (SELECT company_id, event_id FROM {parsed_table} WHERE len(_errors) = 0),
                 companies AS (SELECT DISTINCT company_id FROM valid)
            SELECT EXISTS (SELECT 1 FROM events SEMI JOIN companies USING (company_id))
                       OR EXISTS (SELECT 1 FROM events_rejected q SEMI JOIN companies USING (company_id)
                                  WHERE q.detected_by = 'load'),
                   (SELECT count(*) <> count(DISTINCT hash(company_id, event_id)) FROM valid)"""
    ).fetchall()
    return not stored and not repeats


def _parse_sql(checked_sql: str) -> str:
    fields = list(PAYLOAD_FIELD_TYPES)
    paths = ", ".join(quote_literal(f"$.{name}") for name in fields)
    typed = []
    present = []
    type_checks = []
    raws = []
    for index, (name, sql_type) in enumerate(PAYLOAD_FIELD_TYPES.items(), start=2):
        # _raw_<field> is the field's value as minified JSON text: 'null' is an explicit null,
        # '{' or '[' opens an object or an array. Reading that off the text instead of calling
        # json_type per field halved the parse; ->> '$' (the value as text, strings unquoted)
        # then TRY_CAST is the typing, done once in its own step so the type check reuses it.
        raw = f"_raw_{name}"
        raws.append(f"_vals[{index}] AS {raw}")
        text = f"({raw} ->> '$')"
        cast = text if sql_type == "VARCHAR" else f"TRY_CAST({text} AS {sql_type})"
        typed.append(f"{cast} AS {name}")
        present.append(f"CASE WHEN {raw} IS NOT NULL THEN {quote_literal(name)} END")
        wanted = quote_literal(f"wrongly typed payload: field {name} is not {FRIENDLY_TYPES.get(sql_type, sql_type)}, got ")
        # An amount with fractions of a cent is quarantined, not rounded by its TRY_CAST.
        rounded = rounded_text_sql(text, name, sql_type)
        type_checks.append(
            f"WHEN {raw} IS NOT NULL AND {raw} <> 'null' "
            f"AND (left({raw}, 1) IN ('{{', '[') OR {name} IS NULL{f' OR {rounded}' if rounded else ''}) "
            f"THEN {wanted} || CAST({raw} AS VARCHAR)"
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
            SELECT _line, _errors, {envelope}, coalesce(CAST(payload AS VARCHAR), '{{}}') AS _ptext
            FROM ({checked_sql})
        ), valued AS (
            -- The payload's one parse: path '$' gives the whole value minified, for the stored
            -- payload and its hash, and its first character tells its JSON type. NULL: not JSON.
            SELECT *, CASE WHEN json_valid(_ptext) THEN json_extract(_ptext, ['$', {paths}]) END AS _vals FROM texts
        ), fields AS (
            SELECT * EXCLUDE (_vals), _vals[1] AS _whole,
                CASE WHEN _vals IS NOT NULL THEN CASE left(_vals[1], 1)
                    WHEN '{{' THEN 'OBJECT' WHEN '[' THEN 'ARRAY' WHEN '"' THEN 'VARCHAR' WHEN 't' THEN 'BOOLEAN'
                    WHEN 'f' THEN 'BOOLEAN' WHEN 'n' THEN 'NULL' ELSE 'NUMBER' END END AS _ptype,
                {', '.join(raws)}
            FROM valued
        ), cast_fields AS (
            SELECT *, {', '.join(typed)} FROM fields
        )
        SELECT _line, _errors, {envelope}, _ptext,
            hash(company_id, aggregate_type, aggregate_id, seq, event_type, occurred_at, actor_id,
                 coalesce(CAST(_whole AS VARCHAR), _ptext)) AS content_hash,
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
            CASE WHEN _ptype = 'OBJECT' THEN CAST(_whole AS JSON) END AS payload,
            {', '.join(PAYLOAD_FIELD_TYPES)}
        FROM cast_fields
    """


def _judge_sql(valid_sql: str) -> str:
    return f"""
        WITH firsts AS (
            SELECT p.*,
                min(_line) OVER same_id AS _first_line,
                arg_min(content_hash, _line) OVER same_id AS _first_hash
            FROM ({valid_sql}) p
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


def _append_with_order_keys(con: duckdb.DuckDBPyConnection, load_id: int, *, stored_may_be_touched: bool) -> None:
    """Insert the new events, renumbering every touched aggregate: a late event shifts the
    order_key of the events after it. Moving the touched aggregates' old rows out and back in
    is cheaper in DuckDB than updating them in place."""
    columns = [c.name for c in table_spec("events").columns]
    key = ", ".join(AGGREGATE_KEY)
    stored_touched = 0
    if stored_may_be_touched:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _events_touched AS "
            f"SELECT DISTINCT {key} FROM _events_judged WHERE _outcome = 'new'"
        )
        stored_touched = con.sql(
            f"SELECT count(*) FROM events e SEMI JOIN _events_touched t USING ({key})"
        ).fetchall()[0][0]
    numbered = f"row_number() OVER (PARTITION BY {key} ORDER BY {ORDER})"
    if stored_touched:
        new_rows = ", ".join(
            f"{int(load_id)} AS load_id" if c == "load_id" else "NULL::BIGINT AS order_key" if c == "order_key" else c
            for c in columns
        )
        select_all = (
            f"SELECT e.* FROM events e SEMI JOIN _events_touched t USING ({key}) "
            f"UNION ALL SELECT {new_rows} FROM _events_judged WHERE _outcome = 'new'"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE _events_rekey AS {select_all}")
        con.execute(
            "DELETE FROM events USING _events_touched t WHERE "
            + " AND ".join(f"events.{k} = t.{k}" for k in AGGREGATE_KEY)
        )
        renumbered = ", ".join(f"{numbered} AS order_key" if c == "order_key" else c for c in columns)
        con.execute(f"INSERT INTO events SELECT {renumbered} FROM _events_rekey")
        con.execute("DROP TABLE _events_rekey")
    else:
        # Only the new rows to number. The window sorts a narrow projection (row, aggregate,
        # order columns) and the wide rows join it by row: sorting the 33-column rows inside
        # the insert cost about as much as the insert itself.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _events_order AS "
            f"SELECT _row, {numbered} AS order_key FROM _events_judged WHERE _outcome = 'new'"
        )
        new_rows = ", ".join(
            f"{int(load_id)} AS load_id" if c == "load_id" else "o.order_key" if c == "order_key" else f"j.{c}"
            for c in columns
        )
        con.execute(
            f"INSERT INTO events SELECT {new_rows} "
            f"FROM _events_judged j JOIN _events_order o USING (_row) WHERE j._outcome = 'new'"
        )
        con.execute("DROP TABLE _events_order")
    con.execute("DROP TABLE IF EXISTS _events_touched")
