"""The native export contract: which tables exist, which events each aggregate accepts, and
which payload fields they carry. Column types live in the SQL files under ``sql/schema``; this
module holds what SQL cannot say (event vocabularies and the lifecycle of each aggregate)."""

from __future__ import annotations

from dataclasses import dataclass

ENTITY_TABLES = (
    "companies",
    "territories",
    "reps",
    "accounts",
    "contacts",
    "leads",
    "deals",
    "activities",
    "products",
)
EVENT_TABLE = "events"
LOADABLE_TABLES = ENTITY_TABLES + (EVENT_TABLE,)
BOOKKEEPING_TABLES = ("load_runs", "load_rejects", "events_rejected")

# The columns an export supplies for the event log, in contract order.
EVENT_INPUT_COLUMNS = (
    "event_id",
    "company_id",
    "aggregate_type",
    "aggregate_id",
    "seq",
    "event_type",
    "occurred_at",
    "recorded_at",
    "actor_id",
    "payload",
)

# Every typed payload field the event log knows, with its SQL type. A field is parsed once at load
# into a column of the same name in `events`.
PAYLOAD_FIELD_TYPES = {
    "account_id": "VARCHAR",
    "owner_rep_id": "VARCHAR",
    "name": "VARCHAR",
    "stage": "VARCHAR",
    "amount": "DECIMAL(18,2)",
    "currency": "VARCHAR",
    "expected_close_date": "DATE",
    "lost_reason": "VARCHAR",
    "status": "VARCHAR",
    "source": "VARCHAR",
    "industry": "VARCHAR",
    "employees": "INTEGER",
    "score": "DOUBLE",
    "potential": "DECIMAL(18,2)",
    "territory_id": "VARCHAR",
    "deal_id": "VARCHAR",
    "lead_id": "VARCHAR",
    "activity_type": "VARCHAR",
}

PATCH_EVENTS = ("updated", "stage_changed", "amount_changed", "close_date_changed", "owner_changed")


@dataclass(frozen=True)
class Aggregate:
    """What an aggregate type is made of: its id column in history tables, the payload fields that
    set its state, and the event types it accepts (``created`` and ``deleted`` always included)."""

    name: str
    id_column: str
    fields: tuple[str, ...]
    event_types: tuple[str, ...]


AGGREGATES = {
    "deal": Aggregate(
        name="deal",
        id_column="deal_id",
        fields=(
            "account_id",
            "owner_rep_id",
            "name",
            "stage",
            "amount",
            "currency",
            "expected_close_date",
            "lost_reason",
        ),
        event_types=("created", *PATCH_EVENTS, "won", "lost", "reopened", "deleted"),
    ),
    "lead": Aggregate(
        name="lead",
        id_column="lead_id",
        fields=(
            "account_id",
            "owner_rep_id",
            "name",
            "source",
            "industry",
            "employees",
            "score",
            "status",
            "deal_id",
        ),
        # converted: patch, then status='converted', converted_at=occurred_at;
        # disqualified: patch, then status='disqualified'.
        event_types=("created", "updated", "owner_changed", "converted", "disqualified", "deleted"),
    ),
    "account": Aggregate(
        name="account",
        id_column="account_id",
        fields=("name", "industry", "employees", "potential", "territory_id", "owner_rep_id"),
        event_types=("created", "updated", "owner_changed", "deleted"),
    ),
    "activity": Aggregate(
        name="activity",
        id_column="activity_id",
        fields=("activity_type", "owner_rep_id", "account_id", "lead_id", "deal_id"),
        event_types=("created", "updated", "deleted"),
    ),
}

DEAL_STAGES_OPEN = ("prospecting", "qualification", "proposal", "negotiation")
DEAL_STAGES_CLOSED = ("closed_won", "closed_lost")
ACTIVITY_TYPES = ("call", "email", "meeting", "task")
