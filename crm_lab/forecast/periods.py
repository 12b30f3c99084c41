"""Instants, days and forecast windows.

An as-of is an instant (UTC); a bare date means midnight at its start, as in ``deals_as_of``. The
simulation counts in whole days since 1970-01-01: a deal closes on a day, and a forecast window
is a run of calendar months ``[start, end)``. The *as-of day* is the first day on which anything
after the as-of can happen: the as-of's own day, or the next one when the as-of is the last
microsecond of a day (as the ends of ``pipeline_snapshots`` periods are).

Examples
--------
>>> window = forecast_window("2025-02-15", "quarter")
>>> window.start.isoformat(), window.end.isoformat(), [p.label for p in window.periods]
('2025-01-01', '2025-04-01', ['2025-01', '2025-02', '2025-03'])
>>> forecast_window("2025-03-31 23:59:59.999999", "month").label
'2025-04'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from crm_lab.errors import InvalidArgument

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE = dt.date(1970, 1, 1)
HORIZON_MONTHS = {"month": 1, "quarter": 3, "year": 12}
EVERY = ("week", "month", "quarter")
_MICROSECOND = dt.timedelta(microseconds=1)


def to_instant(value, name: str = "as_of") -> dt.datetime:
    """A date, datetime or ISO text as an aware UTC datetime (naive means UTC; a date means
    midnight at its start)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            return to_instant(dt.datetime.fromisoformat(text), name)
        except ValueError:
            pass
    raise InvalidArgument(f"{name} must be a date or timestamp like '2025-03-31' or '2025-03-31 23:59:59', got {value!r}")


def to_date(value, name: str) -> dt.date:
    """A date from a date or ISO text (a datetime is refused: say which day)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidArgument(f"{name} must be a date like '2025-06-30', got {value!r}")


def day_number(value: dt.date) -> int:
    """Days since 1970-01-01 of a date."""
    return (value - EPOCH_DATE).days


def day_date(day: int) -> dt.date:
    return EPOCH_DATE + dt.timedelta(days=int(day))


def instant_days(values) -> np.ndarray:
    """Instants (a polars/numpy datetime column or a datetime) as float days since the epoch."""
    if isinstance(values, dt.datetime):
        return np.asarray((to_instant(values) - EPOCH) / dt.timedelta(days=1))
    array = np.asarray(values)
    if array.dtype.kind == "M":
        micros = array.astype("datetime64[us]").astype(np.int64).astype(np.float64)
        out = micros / 86_400e6
        out[np.isnat(array)] = np.nan
        return out
    return array.astype(np.float64)


def first_day_after(values) -> np.ndarray:
    """The first day on which an event later than the instant can fall (see the module notes)."""
    return np.floor(np.asarray(instant_days(values)) + 1.0 / 86_400e6).astype(np.int64)


def date_days(values) -> np.ndarray:
    """A polars/numpy date column as int days since the epoch; missing dates become -2**62."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        days = array.astype("datetime64[D]").astype(np.int64)
        return np.where(np.isnat(array), MISSING_DAY, days)
    return np.asarray(array, dtype=np.int64)


MISSING_DAY = -(2**62)


def _month_start(value: dt.date, months: int = 1) -> dt.date:
    """The first day of the ``months``-long calendar period holding ``value`` (months 1, 3, 12)."""
    first_month = (value.month - 1) // months * months + 1
    return dt.date(value.year, first_month, 1)


def _add_months(value: dt.date, months: int) -> dt.date:
    index = value.year * 12 + value.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """One month of a forecast window (the last one may end early on an explicit horizon date)."""

    label: str
    start: dt.date
    end: dt.date  # exclusive

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """What a forecast covers: the months from ``start`` to ``end`` (exclusive) around the as-of.

    Bookings before the as-of are known (``booked``); the simulation covers the rest.
    """

    as_of: dt.datetime
    horizon: str
    start: dt.date
    end: dt.date
    periods: tuple[Period, ...]

    @property
    def label(self) -> str:
        months = HORIZON_MONTHS.get(self.horizon)
        if months == 3:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if months == 12:
            return str(self.start.year)
        if months == 1:
            return self.periods[0].label
        return f"{self.start.isoformat()}..{self.periods[-1].last_day.isoformat()}"

    @property
    def as_of_day(self) -> int:
        return int(first_day_after(self.as_of))

    @property
    def start_instant(self) -> dt.datetime:
        return to_instant(self.start)

    @property
    def end_instant(self) -> dt.datetime:
        """The window's last microsecond."""
        return to_instant(self.end) - _MICROSECOND

    def edges(self) -> np.ndarray:
        """Day numbers of the period boundaries: period k is ``[edges[k], edges[k + 1])``."""
        return np.array([day_number(p.start) for p in self.periods] + [day_number(self.end)], dtype=np.int64)


def forecast_window(as_of, horizon="quarter") -> Window:
    """The window a forecast at ``as_of`` covers.

    Parameters
    ----------
    as_of : date, datetime or str
        The instant the forecast is made (a date means midnight at its start).
    horizon : {"month", "quarter", "year"} or date
        A calendar period: the month, quarter or year holding the as-of day. Or the last day of
        the window (a date or 'YYYY-MM-DD'): the window then runs from the first of the as-of's
        month to that day.

    Returns
    -------
    Window
        One period per calendar month.
    """
    as_of_at = to_instant(as_of)
    day = day_date(int(first_day_after(as_of_at)))
    if isinstance(horizon, str) and horizon in HORIZON_MONTHS:
        months = HORIZON_MONTHS[horizon]
        start = _month_start(day, months)
        end = _add_months(start, months)
        name = horizon
    else:
        try:
            last = to_date(horizon, "horizon")
        except InvalidArgument:
            raise InvalidArgument(
                f"horizon must be one of month, quarter, year or a date like '2025-06-30', got {horizon!r}"
            ) from None
        if last < day:
            raise InvalidArgument(
                f"horizon {last.isoformat()} is before as_of {as_of_at.isoformat()}: "
                "the window must end on or after the as-of day"
            )
        start = _month_start(day)
        end = last + dt.timedelta(days=1)
        name = last.isoformat()
    periods = []
    cursor = start
    while cursor < end:
        following = min(_add_months(cursor, 1), end)
        periods.append(Period(f"{cursor.year}-{cursor.month:02d}", cursor, following))
        cursor = following
    return Window(as_of_at, name, start, end, tuple(periods))


def as_of_dates(start, stop, every: str = "month") -> list[dt.datetime]:
    """The as-of instants of a backtest: ``start``, then every week, month or quarter while not
    after ``stop``. Month and quarter steps keep the day of month and time of ``start``.

    Examples
    --------
    >>> [d.date().isoformat() for d in as_of_dates("2025-01-01", "2025-03-15")]
    ['2025-01-01', '2025-02-01', '2025-03-01']
    """
    if every not in EVERY:
        raise InvalidArgument(f"every must be one of {', '.join(EVERY)}, got {every!r}")
    first, last = to_instant(start, "start"), to_instant(stop, "stop")
    if last < first:
        raise InvalidArgument(f"stop {last.isoformat()} is before start {first.isoformat()}")
    if every != "week" and first.day > 28:
        raise InvalidArgument(f"start must fall on day 1 to 28 of a month for steps of a {every}, got {first.date().isoformat()}")
    out = []
    step = 0
    while True:
        if every == "week":
            current = first + dt.timedelta(weeks=step)
        else:
            months = step * (1 if every == "month" else 3)
            month_first = _add_months(first.date().replace(day=1), months)
            current = dt.datetime.combine(month_first.replace(day=first.day), first.timetz())
        if current > last:
            return out
        out.append(current)
        step += 1
