"""One rule for how far past its data an as-of may fall, shared by the forecast and the lead sweep."""

from datetime import datetime, timezone

import duckdb
import pytest

from crm_lab.as_of import check_as_of_in_data, day_or_instant, event_span
from crm_lab.errors import InvalidArgument


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE events (company_id VARCHAR, occurred_at TIMESTAMPTZ)")
    con.execute("""INSERT INTO events VALUES ('c1', '2025-01-02 08:00:00+00'), ('c1', '2025-03-10 15:00:00+00'),
                                             ('c2', '2024-11-30 23:30:00+00'), ('c2', '2025-05-01 00:00:00+00')""")
    yield con
    con.close()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_up_to_the_end_of_the_seventh_day_after_the_last_event_is_allowed(con):
    check_as_of_in_data(con, utc("2025-03-17 23:59:59.999999"), company="c1", doing="forecast")


def test_the_eighth_day_is_refused_naming_the_company_and_its_span(con):
    with pytest.raises(InvalidArgument) as refused:
        check_as_of_in_data(con, utc("2025-03-18 00:00:00"), company="c1", doing="sweep")
    assert str(refused.value) == (
        "company c1: as_of 2025-03-18: after the data ends (the event log spans 2025-01-02 to 2025-03-10); "
        "sweep as of at most 7 days after 2025-03-10, or load and replay newer events")


def test_without_a_company_the_whole_log_counts(con):
    check_as_of_in_data(con, utc("2025-05-08 12:00:00"), company=None, doing="forecast")  # c2 runs to 2025-05-01
    with pytest.raises(InvalidArgument) as refused:
        check_as_of_in_data(con, utc("2025-05-09 06:30:00"), company=None, doing="forecast")
    assert str(refused.value) == (
        "as_of 2025-05-09 06:30:00+00:00: after the data ends (the event log spans 2024-11-30 to 2025-05-01); "
        "forecast as of at most 7 days after 2025-05-01, or load and replay newer events")


def test_a_company_with_no_events_has_nothing_to_be_after(con):
    assert event_span(con, "c9") == (None, None)
    check_as_of_in_data(con, utc("2031-01-01 00:00:00"), company="c9", doing="forecast")


def test_days_are_shown_as_typed_and_instants_in_utc():
    assert day_or_instant(utc("2025-03-18 00:00:00")) == "2025-03-18"
    other_zone = datetime.fromisoformat("2025-03-18 01:00:00+01:00")  # midnight UTC
    assert day_or_instant(other_zone) == "2025-03-18"
    assert day_or_instant(utc("2025-03-18 00:00:01")) == "2025-03-18 00:00:01+00:00"
