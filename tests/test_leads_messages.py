"""Messages a CLI user and a Python user both read name a setting both ways: the CLI's option
and the Python argument (``--deal-value (deal_value= in Python)``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.leads.analysis import LeadSweepSettings, analyse_frames
from crm_lab.leads.features import DealEconomics

AS_OF = datetime(2025, 6, 1, tzinfo=timezone.utc)


def refusal(economics: DealEconomics, **settings) -> str:
    one = pl.DataFrame({"converted": [True]})
    with pytest.raises(InvalidArgument) as refused:
        analyse_frames("c1", train=one, test=one, open_leads=one, economics=economics,
                       settings=LeadSweepSettings(as_of=AS_OF, score_source="column", **settings), as_of=AS_OF,
                       train_cutoff=AS_OF - timedelta(days=120))
    return str(refused.value)


def test_no_won_deal_from_a_lead_names_the_cli_option_and_the_python_argument():
    assert refusal(DealEconomics(3, 2, 0, 0.0, None, np.zeros(0))) == (
        "company c1: no deal from a converted lead had been won by 2025-06-01 00:00, so there is no deal_value to "
        "estimate from history: pass --deal-value (deal_value= in Python), e.g. the forecast's estimate"
    )


def test_no_closed_deal_from_a_lead_names_the_win_rate_option_both_ways():
    assert refusal(DealEconomics(3, 0, 0, None, None, np.zeros(0)), deal_value=1000.0) == (
        "company c1: no deal from a converted lead had closed by 2025-06-01 00:00, so there is no win_rate to "
        "estimate from history: pass --win-rate (win_rate= in Python), e.g. the forecast's estimate"
    )


def test_swept_leads_without_a_score_are_named_with_the_way_out():
    test = pl.DataFrame({"lead_id": [f"L{i}" for i in range(8)], "converted": [True, False] * 4,
                         "score": [0.5, None, 0.2, float("nan"), None, 0.9, None, None]})
    with pytest.raises(InvalidArgument) as refused:
        analyse_frames("c1", train=test.head(0), test=test, open_leads=test.head(0),
                       economics=DealEconomics(3, 2, 2, 1000.0, 0.5, np.zeros(0)),
                       settings=LeadSweepSettings(as_of=AS_OF, score_source="column", deal_value=1000.0, win_rate=0.5),
                       as_of=AS_OF, train_cutoff=AS_OF - timedelta(days=120))
    assert str(refused.value) == (
        "company c1: 5 of the 8 swept leads have no score (L1, L3, L4, L6, L7): give every lead a score in the "
        "export, or sweep the model's probabilities (--score model, score_source='model' in Python)")
