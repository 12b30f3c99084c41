"""A pure-Python reference for replay, written to be obviously right rather than fast, and a seeded
generator of event logs full of the hard cases.

The reference takes events as the export writes them (dicts with the contract's columns, payload a
dict) and returns what replay must produce: the three SCD2 histories and the replay-time
quarantine. It shares no code with ``crm_lab.replay``; it reads the rules from the design:

* one aggregate is (company_id, aggregate_type, aggregate_id); its events are ordered by
  (occurred_at, seq with NULLs last, event_id);
* quarantine, in this priority: no ``created`` at all; ordered before the first ``created``;
  ordered after the first ``deleted`` that follows it; a second ``created``;
* a payload key sets its field, a JSON null clears it, an absent key leaves it;
* one history row per distinct instant of valid events; a ``deleted`` ends the last row at its
  instant and leaves no row from then on.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from crm_lab.contract import AGGREGATES, DEAL_STAGES_OPEN

CENT = Decimal("0.01")

REASON_NO_CREATED = "no created event for this aggregate"
REASON_BEFORE_CREATED = "event before its aggregate was created"
REASON_AFTER_DELETED = "event after its aggregate was deleted"
REASON_ALREADY_CREATED = "aggregate already created"

DEAL_COLUMNS = (
    "company_id", "deal_id", "version", "valid_from", "valid_to", "account_id", "owner_rep_id", "name",
    "stage", "amount", "currency", "expected_close_date", "lost_reason", "is_closed", "is_won", "closed_at",
    "created_at", "stage_entered_at", "close_date_push_count", "amount_at_creation", "last_event_id",
)
LEAD_COLUMNS = (
    "company_id", "lead_id", "version", "valid_from", "valid_to", "account_id", "owner_rep_id", "name",
    "source", "industry", "employees", "score", "status", "deal_id", "created_at", "converted_at",
    "last_event_id",
)
ACCOUNT_COLUMNS = (
    "company_id", "account_id", "version", "valid_from", "valid_to", "name", "industry", "employees",
    "potential", "territory_id", "owner_rep_id", "created_at", "last_event_id",
)
HISTORY_COLUMNS = {"deal": DEAL_COLUMNS, "lead": LEAD_COLUMNS, "account": ACCOUNT_COLUMNS}
HISTORY_TABLES = {"deal": "deal_history", "lead": "lead_history", "account": "account_history"}


# --------------------------------------------------------------------------------------------------
# Parsing what the export says into the values the database holds
# --------------------------------------------------------------------------------------------------

def parse_ts(text: str) -> datetime:
    """An ISO timestamp; a naive one is UTC. Returned aware, in UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def field_value(name: str, raw: Any) -> Any:
    """A payload value as the typed column holds it (None stays None: a clear)."""
    if raw is None:
        return None
    if name in ("amount", "potential"):
        return Decimal(str(raw)).quantize(CENT)
    if name == "expected_close_date":
        return date.fromisoformat(raw)
    if name == "employees":
        return int(raw)
    if name == "score":
        return float(raw)
    return str(raw)


@dataclass(frozen=True)
class Event:
    event_id: str
    company_id: str
    aggregate_type: str
    aggregate_id: str
    seq: int | None
    event_type: str
    occurred_at: datetime
    payload: dict

    @property
    def aggregate(self) -> tuple[str, str, str]:
        return (self.company_id, self.aggregate_type, self.aggregate_id)

    @property
    def order(self) -> tuple:
        return (self.occurred_at, self.seq is None, self.seq if self.seq is not None else 0, self.event_id)

    def patch(self) -> dict[str, Any]:
        """The fields this event sets (a None value clears), restricted to its aggregate's fields."""
        fields = AGGREGATES[self.aggregate_type].fields
        return {k: field_value(k, v) for k, v in self.payload.items() if k in fields}


def to_event(record: dict) -> Event:
    payload = record.get("payload") or {}
    if isinstance(payload, str):
        payload = json.loads(payload)
    return Event(
        event_id=record["event_id"],
        company_id=record["company_id"],
        aggregate_type=record["aggregate_type"],
        aggregate_id=record["aggregate_id"],
        seq=record.get("seq"),
        event_type=record["event_type"],
        occurred_at=parse_ts(record["occurred_at"]),
        payload=payload,
    )


def stored_events(batches: list[list[dict]]) -> list[Event]:
    """What the loader keeps of a sequence of loads: one event per (company_id, event_id), the first
    to arrive (an exact duplicate is the same event; a conflicting one is quarantined at load)."""
    seen: dict[tuple[str, str], Event] = {}
    for batch in batches:
        for record in batch:
            key = (record["company_id"], record["event_id"])
            if key not in seen:
                seen[key] = to_event(record)
    return list(seen.values())


# --------------------------------------------------------------------------------------------------
# The fold
# --------------------------------------------------------------------------------------------------

@dataclass
class Folded:
    histories: dict[str, list[dict]] = field(default_factory=lambda: {"deal": [], "lead": [], "account": []})
    quarantine: list[tuple[str, str, str]] = field(default_factory=list)  # (company_id, event_id, reason)
    valid: list[Event] = field(default_factory=list)

    def rows(self, aggregate_type: str) -> list[tuple]:
        columns = HISTORY_COLUMNS[aggregate_type]
        return sorted(tuple(r[c] for c in columns) for r in self.histories[aggregate_type])


def judge(events: list[Event]) -> tuple[list[Event], list[tuple[Event, str]]]:
    """Split one aggregate's ordered events into valid ones and quarantined ones with reasons."""
    created_at = next((i for i, e in enumerate(events) if e.event_type == "created"), None)
    if created_at is None:
        return [], [(e, REASON_NO_CREATED) for e in events]
    deleted_at = next((i for i, e in enumerate(events) if i > created_at and e.event_type == "deleted"), None)
    valid, bad = [], []
    for i, e in enumerate(events):
        if i < created_at:
            bad.append((e, REASON_BEFORE_CREATED))
        elif deleted_at is not None and i > deleted_at:
            bad.append((e, REASON_AFTER_DELETED))
        elif i > created_at and e.event_type == "created":
            bad.append((e, REASON_ALREADY_CREATED))
        else:
            valid.append(e)
    return valid, bad


def apply(state: dict, e: Event) -> None:
    """One valid event on an aggregate's state (in place)."""
    kind, t = e.event_type, e.occurred_at
    if kind == "created":
        state.clear()
        state.update({f: None for f in AGGREGATES[e.aggregate_type].fields})
        state["created_at"] = t
        if e.aggregate_type == "deal":
            state.update(is_closed=False, is_won=None, closed_at=None)
        if e.aggregate_type == "lead":
            state["converted_at"] = None
    state.update(e.patch())
    if e.aggregate_type == "deal":
        if kind == "won":
            state.update(stage="closed_won", is_closed=True, is_won=True, closed_at=t)
        elif kind == "lost":
            state.update(stage="closed_lost", is_closed=True, is_won=False, closed_at=t)
        elif kind == "reopened":
            state.update(is_closed=False, is_won=None, closed_at=None)
    elif e.aggregate_type == "lead":
        if kind == "converted":
            state.update(status="converted", converted_at=t)
        elif kind == "disqualified":
            state["status"] = "disqualified"


def versions(valid: list[Event]) -> tuple[list[dict], datetime | None]:
    """The SCD2 rows of one aggregate from its valid events, and the instant it was deleted."""
    rows: list[dict] = []
    state: dict = {}
    deleted = None
    i = 0
    while i < len(valid):
        instant = valid[i].occurred_at
        last = None
        while i < len(valid) and valid[i].occurred_at == instant:
            last = valid[i]
            if last.event_type == "deleted":
                deleted = instant
            else:
                apply(state, last)
            i += 1
        if deleted is not None:
            break  # judge() guarantees nothing valid follows a delete
        rows.append({**state, "valid_from": instant, "last_event_id": last.event_id})
    for n, row in enumerate(rows):
        row["version"] = n + 1
        row["valid_to"] = rows[n + 1]["valid_from"] if n + 1 < len(rows) else deleted
    return rows, deleted


def derive_deal(rows: list[dict]) -> None:
    pushes = 0
    for n, row in enumerate(rows):
        prev = rows[n - 1] if n else None
        if prev is None or prev["stage"] != row["stage"]:
            row["stage_entered_at"] = row["valid_from"]
        else:
            row["stage_entered_at"] = prev["stage_entered_at"]
        if prev and prev["expected_close_date"] and row["expected_close_date"] and (
            row["expected_close_date"] > prev["expected_close_date"]
        ):
            pushes += 1
        row["close_date_push_count"] = pushes
        row["amount_at_creation"] = rows[0]["amount"]


def group(events: list[Event]) -> dict[tuple[str, str, str], list[Event]]:
    groups: dict[tuple[str, str, str], list[Event]] = {}
    for e in events:
        groups.setdefault(e.aggregate, []).append(e)
    for evs in groups.values():
        evs.sort(key=lambda e: e.order)
    return groups


def fold(events: list[Event]) -> Folded:
    out = Folded()
    for (company_id, aggregate_type, aggregate_id), evs in sorted(group(events).items()):
        valid, bad = judge(evs)
        out.quarantine += [(e.company_id, e.event_id, reason) for e, reason in bad]
        out.valid += valid
        if aggregate_type not in HISTORY_COLUMNS:
            continue
        rows, _ = versions(valid)
        if aggregate_type == "deal":
            derive_deal(rows)
        id_column = AGGREGATES[aggregate_type].id_column
        for row in rows:
            # The lead's own deal_id field is a payload field; the deal's deal_id is its identity.
            out.histories[aggregate_type].append({**row, "company_id": company_id, id_column: aggregate_id})
    out.quarantine.sort()
    return out


def fold_batches(batches: list[list[dict]]) -> Folded:
    return fold(stored_events(batches))


def state_as_of(folded: Folded, aggregate_type: str, ts: datetime) -> dict[tuple[str, str], dict]:
    """The state of every aggregate of a type as of ``ts``, by folding afresh the valid events with
    occurred_at <= ts (not by looking the history up: a second, independent route)."""
    out = {}
    for (company_id, kind, aggregate_id), evs in group(folded.valid).items():
        if kind != aggregate_type:
            continue
        state: dict = {}
        alive = False
        for e in evs:
            if e.occurred_at > ts:
                break
            if e.event_type == "deleted":
                alive = False
                break
            apply(state, e)
            alive = True
        if alive:
            out[(company_id, aggregate_id)] = state
    return out


def history_as_of(folded: Folded, aggregate_type: str, ts: datetime) -> dict[tuple[str, str], dict]:
    """The history row in force at ``ts``, per aggregate."""
    id_column = AGGREGATES[aggregate_type].id_column
    return {
        (r["company_id"], r[id_column]): r
        for r in folded.histories[aggregate_type]
        if r["valid_from"] <= ts and (r["valid_to"] is None or r["valid_to"] > ts)
    }


# --------------------------------------------------------------------------------------------------
# Hard-case log generator
# --------------------------------------------------------------------------------------------------

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
OPEN = list(DEAL_STAGES_OPEN)


@dataclass
class Log:
    """A generated log: the loads in arrival order, and the time range it covers."""

    batches: list[list[dict]]
    start: datetime
    end: datetime

    @property
    def events(self) -> list[dict]:
        return [e for b in self.batches for e in b]


class _Gen:
    def __init__(self, seed: int, *, hours: int, tenants: tuple[str, ...]):
        self.rng = random.Random(seed)
        self.hours = hours
        self.tenants = tenants
        self.counter = 0
        self.main: list[dict] = []
        self.late: list[list[dict]] = [[], []]
        self.hours_used = 0

    # -- small pieces --------------------------------------------------------------------------
    def instant(self, lo: int = 0) -> int:
        # A coarse grid of hours, so that equal occurred_at instants are common.
        return self.rng.randint(lo, lo + self.hours // 6)

    def render(self, hour: int) -> str:
        t = EPOCH + timedelta(hours=hour)
        style = self.rng.random()
        if style < 0.5:
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")
        if style < 0.75:
            return t.strftime("%Y-%m-%d %H:%M:%S")  # naive: UTC
        local = t.astimezone(timezone(timedelta(hours=2)))
        return local.strftime("%Y-%m-%dT%H:%M:%S+02:00")

    def money(self) -> str | int:
        cents = self.rng.randint(1, 5000) * 50 + self.rng.choice([0, 1, 99])
        value = Decimal(cents) / 100
        return int(value) if value == int(value) and self.rng.random() < 0.5 else str(value)

    def close_date(self) -> str:
        return (date(2024, 1, 15) + timedelta(days=self.rng.randint(0, 200))).isoformat()

    def new_id(self) -> str:
        self.counter += 1
        # Ids whose order is not the order of generation, so that the event_id tie-break matters.
        return f"e{self.rng.randint(0, 999):03d}-{self.counter}"

    def seq_for(self, n: int) -> int | None:
        r = self.rng.random()
        if r < 0.2:
            return None
        if r < 0.3:
            return max(n - 1, 0)  # equal seqs are broken by event_id
        return n

    # -- events --------------------------------------------------------------------------------
    def ev(self, company_id, kind, agg_id, event_type, hour, payload, seq) -> dict:
        record = {
            "event_id": self.new_id(),
            "company_id": company_id,
            "aggregate_type": kind,
            "aggregate_id": agg_id,
            "seq": seq,
            "event_type": event_type,
            "occurred_at": self.render(hour),
            "payload": payload,
        }
        if self.rng.random() < 0.1:
            record["payload"] = {**payload, "not_a_field": 1}
        if kind == "deal" and self.rng.random() < 0.05:
            record["payload"] = {**record["payload"], "status": "ignored by deals"}
        return record

    def deal_step(self, state: dict) -> tuple[str, dict]:
        r = self.rng.random()
        if state["closed"]:
            if r < 0.6:
                state["closed"] = False
                return "reopened", {"stage": self.rng.choice(OPEN), "lost_reason": None}
            if r < 0.8:
                return "updated", {"name": self.rng.choice(["Renamed", None])}
            return self.rng.choice(["won", "lost"]), {}
        if r < 0.2:
            return "stage_changed", {"stage": self.rng.choice(OPEN)}
        if r < 0.35:
            return "amount_changed", {"amount": self.money()}
        if r < 0.5:
            return "close_date_changed", {"expected_close_date": self.close_date()}
        if r < 0.55:
            return "close_date_changed", {"expected_close_date": None}
        if r < 0.6:
            return "owner_changed", {"owner_rep_id": self.rng.choice(["r1", "r2", "r3"])}
        if r < 0.7:
            return "updated", self.rng.choice([
                {"name": None}, {"lost_reason": "budget"}, {"account_id": None},
                {"currency": "USD", "amount": self.money()}, {},
            ])
        if r < 0.85:
            state["closed"] = True
            return "won", self.rng.choice([{}, {"amount": self.money()}])
        state["closed"] = True
        return "lost", {"lost_reason": self.rng.choice(["price", "timing", "competitor"])}

    def lead_step(self, state: dict) -> tuple[str, dict]:
        r = self.rng.random()
        if r < 0.4:
            return "updated", self.rng.choice([
                {"score": self.rng.randint(0, 400) / 4}, {"employees": self.rng.randint(1, 5000)},
                {"name": None}, {"industry": self.rng.choice(["saas", "retail", None])}, {"status": "working"},
            ])
        if r < 0.55:
            return "owner_changed", {"owner_rep_id": self.rng.choice(["r1", "r2", None])}
        if r < 0.75:
            return "converted", self.rng.choice([{"deal_id": f"d{self.rng.randint(1, 9)}"}, {}])
        return "disqualified", self.rng.choice([{}, {"score": 0}])

    def account_step(self, state: dict) -> tuple[str, dict]:
        r = self.rng.random()
        if r < 0.7:
            return "updated", self.rng.choice([
                {"potential": self.money()}, {"employees": self.rng.randint(1, 9000)}, {"industry": None},
                {"territory_id": self.rng.choice(["t1", "t2", None])}, {"name": "Renamed Inc"},
            ])
        return "owner_changed", {"owner_rep_id": self.rng.choice(["r1", "r2", "r3", None])}

    def created_payload(self, kind: str, agg_id: str) -> dict:
        if kind == "deal":
            payload = {
                "name": f"Deal {agg_id}", "stage": self.rng.choice(OPEN), "amount": self.money(),
                "currency": "EUR", "expected_close_date": self.close_date(),
                "account_id": f"a{self.rng.randint(1, 5)}", "owner_rep_id": self.rng.choice(["r1", "r2", "r3"]),
            }
            if self.rng.random() < 0.2:
                del payload["expected_close_date"]
            return payload
        if kind == "lead":
            return {
                "name": f"Lead {agg_id}", "source": self.rng.choice(["web", "event"]), "industry": "saas",
                "employees": self.rng.randint(1, 500), "score": self.rng.randint(0, 400) / 4, "status": "open",
                "owner_rep_id": "r1", "account_id": self.rng.choice([None, "a1"]),
            }
        return {
            "name": f"Account {agg_id}", "industry": "retail", "employees": self.rng.randint(1, 9000),
            "potential": self.money(), "territory_id": "t1", "owner_rep_id": "r2",
        }

    def aggregate(self, company_id: str, kind: str, agg_id: str) -> list[dict]:
        """One aggregate's events: a lifecycle, plus (at random) the hard cases around it."""
        rng = self.rng
        step = {"deal": self.deal_step, "lead": self.lead_step, "account": self.account_step}[kind]
        out: list[dict] = []
        hour = self.instant(rng.randint(0, self.hours // 2))
        n = 1
        created = self.ev(company_id, kind, agg_id, "created", hour, self.created_payload(kind, agg_id), n)
        if rng.random() < 0.1:  # orphan: the created event is never exported
            created = None
        else:
            out.append(created)
        if rng.random() < 0.15:  # an event that occurred before its aggregate was created
            before = hour - rng.randint(0, 3)
            out.append(self.ev(company_id, kind, agg_id, "updated", max(before, 0), {"name": "too early"},
                               None if before < hour else 0))
        state = {"closed": False}
        last = hour
        for _ in range(rng.randint(0, 7)):
            last = last + rng.choice([0, 0, 1, 2, 5, 12, 24])
            n += 1
            event_type, payload = step(state)
            out.append(self.ev(company_id, kind, agg_id, event_type, last, payload, self.seq_for(n)))
        if rng.random() < 0.08:  # a second created
            out.append(self.ev(company_id, kind, agg_id, "created", last + rng.randint(0, 3),
                               self.created_payload(kind, agg_id), None))
        if rng.random() < 0.2:  # deleted, at its own instant, then maybe more events
            last += rng.randint(1, 24)
            n += 1
            out.append(self.ev(company_id, kind, agg_id, "deleted", last, {}, n))
            for _ in range(rng.randint(0, 2)):
                last += rng.choice([0, 1, 5])
                n += 1
                more = rng.choice(["updated", "created", "deleted"])
                payload = self.created_payload(kind, agg_id) if more == "created" else {"name": "after delete"}
                out.append(self.ev(company_id, kind, agg_id, more, last, payload, n))
        self.hours_used = max(self.hours_used, last)

        # Where each event arrives: most in the first load, some late; an orphan's created may be
        # rescued by a later load.
        first, late = [], []
        for record in out:
            (late if rng.random() < 0.15 else first).append(record)
        if created is None and rng.random() < 0.5:
            late.append(self.ev(company_id, kind, agg_id, "created", hour, self.created_payload(kind, agg_id), 1))
        if created is not None and created in first and rng.random() < 0.1:
            first.remove(created)
            late.append(created)  # the created arrives after its other events
        self.main += first
        for record in late:
            self.late[rng.randrange(2)].append(record)
        # Exact duplicates, in the same load or a later one.
        for record in out:
            if rng.random() < 0.06:
                rng.choice([self.main, self.late[1]]).append(dict(record))
        return out


def generate(seed: int, *, deals: int = 12, leads: int = 5, accounts: int = 4, hours: int = 24 * 60,
             tenants: tuple[str, ...] = ("c1", "c2"), conflicting: bool = True) -> Log:
    """A log with every hard case at random. ``batches[0]`` is the first load; later batches are
    late arrivals. Two tenants use the same aggregate ids (and sometimes the same event ids)."""
    g = _Gen(seed, hours=hours, tenants=tenants)
    for company_id in tenants:
        for kind, count, prefix in (("deal", deals, "d"), ("lead", leads, "l"), ("account", accounts, "a")):
            for i in range(1, count + 1):
                g.aggregate(company_id, kind, f"{prefix}{i}")
    rng = g.rng
    # The same event id in two tenants is two events.
    by_tenant = [e for e in g.main if e["company_id"] == tenants[-1]]
    if len(tenants) > 1:
        taken = {e["event_id"] for e in g.main + g.late[0] + g.late[1] if e["company_id"] == tenants[0]}
        for record in rng.sample(by_tenant, min(5, len(by_tenant))):
            shared = rng.choice(sorted(taken))
            for batch in [g.main, *g.late]:
                for other in batch:
                    if other is not record and other["event_id"] == record["event_id"] and other["company_id"] == record["company_id"]:
                        other["event_id"] = shared  # keep exact duplicates exact
            record["event_id"] = shared
            taken.discard(shared)
    # A conflicting duplicate arrives last: quarantined at load, the first one stands.
    conflicts = []
    if conflicting:
        for record in rng.sample(g.main, min(3, len(g.main))):
            changed = dict(record)
            changed["payload"] = {**record["payload"], "name": "conflicting"}
            conflicts.append(changed)
    for batch in [g.main, *g.late]:
        rng.shuffle(batch)
    batches = [g.main, g.late[0], g.late[1] + conflicts]
    batches = [b for b in batches if b]
    end = EPOCH + timedelta(hours=g.hours_used + 1)
    return Log(batches=batches, start=EPOCH, end=end)
