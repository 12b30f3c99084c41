"""How far past its data an as-of may fall: one rule, one message, for every model that takes one
(the forecast, its dashboard and notebooks, and the lead sweep)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb

from crm_lab.errors import InvalidArgument

# An export lags its CRM by days, and a quiet week is normal. Much later, a forecast's "open" deals
# are only the ones nobody saw close, and a lead counts as mature while most of its maturity
# window lies after the data, where nothing was recorded.
AS_OF_AFTER_DATA = timedelta(days=7)


def event_span(con: duckdb.DuckDBPyConnection, company: str | None = None) -> tuple[datetime | None, datetime | None]:
    """The first and last ``occurred_at`` of the (company's) event log; (None, None) when empty."""
    return con.sql(
        "SELECT min(occurred_at), max(occurred_at) FROM events WHERE $company IS NULL OR company_id = $company",
        params={"company": company},
    ).fetchall()[0]


def check_as_of_in_data(con: duckdb.DuckDBPyConnection, as_of: datetime, *, company: str | None, doing: str) -> None:
    """Refuse an ``as_of`` after the end of the :data:`AS_OF_AFTER_DATA`-th day (UTC) after the
    (company's) event log ends, naming the span of the log. ``doing`` is the verb the advice
    uses ("forecast", "sweep")."""
    first, last = event_span(con, company)
    if last is None:
        return
    last_day = last.astimezone(timezone.utc).date()
    # "at most 7 days after <last day>" means up to the end of that seventh day.
    limit = datetime.combine(last_day + AS_OF_AFTER_DATA + timedelta(days=1), datetime.min.time(), timezone.utc)
    if as_of >= limit:
        who = f"company {company}: " if company is not None else ""
        raise InvalidArgument(
            f"{who}as_of {day_or_instant(as_of)}: after the data ends (the event log spans "
            f"{first.astimezone(timezone.utc).date()} to {last_day}); {doing} as of at most "
            f"{AS_OF_AFTER_DATA.days} days after {last_day}, or load and replay newer events"
        )


def day_or_instant(value: datetime) -> str:
    """A UTC instant as a user typed it: the bare date at midnight, else date and time."""
    value = value.astimezone(timezone.utc)
    return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
