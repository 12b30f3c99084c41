"""The pure-Python baseline of the replay benchmark: a plain dict-based fold of event tuples into
the same per-version states that ``crm_lab/sql/replay/*_history.sql`` produce.

It is written the way one would write it without a database, not to be slow: one sort of the
events by (company, aggregate type, aggregate id, occurred_at, seq NULLS LAST, event_id), then per
aggregate the replay-time quarantine (nothing before ``created``, nothing after the first
``deleted``, no second ``created``), field patches (a key in ``payload_keys`` sets its field, a
typed NULL clears it), the deal and lead lifecycles, one version per distinct instant with
``valid_from``/``valid_to``, and for deals ``stage_entered_at``, ``close_date_push_count`` and
``amount_at_creation``. Like the SQL it reads the typed payload columns parsed at load, not JSON.
"""

from __future__ import annotations

from crm_lab.contract import AGGREGATES

# The aggregates a history is folded for, and their payload fields, as the contract defines them.
AGGREGATE_FIELDS = {kind: AGGREGATES[kind].fields for kind in ("deal", "lead", "account")}
# Columns of an input tuple, in this order (see SELECT_COLUMNS): every field any history folds.
FIELDS = tuple(dict.fromkeys(field for fields in AGGREGATE_FIELDS.values() for field in fields))
ENVELOPE = ("company_id", "aggregate_type", "aggregate_id", "occurred_at", "seq", "event_id", "event_type", "payload_keys")
SELECT_COLUMNS = ENVELOPE + FIELDS
C, T, A, OCC, SEQ, EID, ET, KEYS = range(8)
POS = {name: len(ENVELOPE) + i for i, name in enumerate(FIELDS)}

DEAL_ENDS = {"won": ("closed_won", True, True), "lost": ("closed_lost", True, False)}


def order_key(row: tuple) -> tuple:
    seq = row[SEQ]
    return (row[C], row[T], row[A], row[OCC], seq is None, seq if seq is not None else 0, row[EID])


def judge(events: list[tuple]) -> tuple[list[tuple], int]:
    """The valid events of one ordered aggregate and the number quarantined."""
    created = None
    for k, e in enumerate(events):
        if e[ET] == "created":
            created = k
            break
    if created is None:
        return [], len(events)
    valid = [events[created]]
    quarantined = created
    deleted = False
    for e in events[created + 1 :]:
        if deleted or e[ET] == "created":
            quarantined += 1
        else:
            valid.append(e)
            deleted = e[ET] == "deleted"
    return valid, quarantined


def fold_aggregate(company_id: str, kind: str, aggregate_id: str, valid: list[tuple]) -> list[tuple]:
    """SCD2 versions of one aggregate from its valid, ordered events."""
    fields = AGGREGATE_FIELDS[kind]
    wanted = set(fields)
    state = dict.fromkeys(fields)
    is_closed = is_won = closed_at = converted_at = None
    created_at = valid[0][OCC]
    instants = []  # (occurred_at, event_type, event_id, state values) of the last event per instant
    last = len(valid) - 1
    for k, e in enumerate(valid):
        event_type = e[ET]
        for key in e[KEYS]:
            if key in wanted:
                state[key] = e[POS[key]]
        if kind == "deal":
            if event_type == "created" or event_type == "reopened":
                is_closed, is_won, closed_at = False, None, None
            elif event_type in DEAL_ENDS:
                state["stage"], is_closed, is_won = DEAL_ENDS[event_type]
                closed_at = e[OCC]
        elif kind == "lead":
            if event_type == "converted":
                state["status"] = "converted"
                converted_at = e[OCC]
            elif event_type == "disqualified":
                state["status"] = "disqualified"
        if k == last or valid[k + 1][OCC] != e[OCC]:
            values = tuple(state[f] for f in fields)
            if kind == "deal":
                values += (is_closed, is_won, closed_at, created_at)
            elif kind == "lead":
                values += (created_at, converted_at)
            else:
                values += (created_at,)
            instants.append((e[OCC], event_type, e[EID], values))

    rows = []
    version = 0
    stage_entered_at = None
    pushes = 0
    previous = None
    amount_at_creation = None
    for k, (at, event_type, event_id, values) in enumerate(instants):
        if event_type == "deleted":
            continue
        valid_to = instants[k + 1][0] if k + 1 < len(instants) else None
        version += 1
        if kind == "deal":
            stage, amount, close_date = values[3], values[4], values[6]
            if previous is None:
                amount_at_creation = amount
                if stage is not None:
                    stage_entered_at = at
            else:
                if stage != previous[3]:
                    stage_entered_at = at
                if close_date is not None and previous[6] is not None and close_date > previous[6]:
                    pushes += 1
            previous = values
            rows.append(
                (company_id, aggregate_id, version, at, valid_to)
                + values
                + (stage_entered_at, pushes, amount_at_creation, event_id)
            )
        else:
            rows.append((company_id, aggregate_id, version, at, valid_to) + values + (event_id,))
    return rows


def fold(events: list[tuple]) -> tuple[dict[str, list[tuple]], int]:
    """Sort the events (in place) and fold every aggregate. Returns the history rows per aggregate
    type (deal, lead, account) and the number of events quarantined. Other aggregate types
    (activities) are judged but have no history, as in the SQL."""
    events.sort(key=order_key)
    histories: dict[str, list[tuple]] = {"deal": [], "lead": [], "account": []}
    quarantined = 0
    n = len(events)
    i = 0
    while i < n:
        first = events[i]
        j = i + 1
        while j < n and events[j][A] == first[A] and events[j][T] == first[T] and events[j][C] == first[C]:
            j += 1
        valid, bad = judge(events[i:j])
        quarantined += bad
        kind = first[T]
        if valid and kind in histories:
            histories[kind].extend(fold_aggregate(first[C], kind, first[A], valid))
        i = j
    return histories, quarantined

