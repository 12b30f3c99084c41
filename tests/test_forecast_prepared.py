"""forecast(inputs=...) simulates inputs a notebook prepared once, and refuses ones prepared for
another window or company, or none at all."""

from __future__ import annotations

import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.forecast import forecast, prepare
from crm_lab.workbench import sample_database


@pytest.fixture(scope="module")
def prepared():
    return prepare(sample_database(), as_of="2025-07-01", horizon="quarter", company="c2")


def test_prepared_inputs_give_the_forecast_prepare_would(prepared):
    db = sample_database()
    given = forecast(db, as_of="2025-07-01", company="c2", inputs=prepared, trials=300, seed=4, store=False)
    fresh = forecast(db, as_of="2025-07-01", company="c2", trials=300, seed=4, store=False)
    assert given.run.summary.equals(fresh.run.summary)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"as_of": "2025-08-01"}, "inputs: prepared for the window 2025-Q3 as of 2025-07-01T00:00:00+00:00, not 2025-Q3 as of "
                              "2025-08-01T00:00:00+00:00; prepare() with the same as_of and horizon"),
    ({"horizon": "month"}, "inputs: prepared for the window 2025-Q3 as of 2025-07-01T00:00:00+00:00, not 2025-07 as of "
                           "2025-07-01T00:00:00+00:00; prepare() with the same as_of and horizon"),
    ({"company": "c1"}, "inputs: prepared for c2, not company 'c1'"),
])
def test_inputs_prepared_for_another_forecast_are_refused(prepared, kwargs, message):
    arguments = {"as_of": "2025-07-01", "company": "c2", **kwargs}
    with pytest.raises(InvalidArgument) as refused:
        forecast(sample_database(), inputs=prepared, trials=10, store=False, **arguments)
    assert str(refused.value) == message


def test_no_inputs_is_refused():
    with pytest.raises(InvalidArgument) as refused:
        forecast(sample_database(), as_of="2025-07-01", inputs=[], trials=10, store=False)
    assert str(refused.value) == "inputs: no company's inputs given; pass what prepare() returned, or None"
