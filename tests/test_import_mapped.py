"""A plain spreadsheet of opportunities (one row per deal, no history) through a mapping file:
its events are derived from its dates."""

from __future__ import annotations

from decimal import Decimal

from crm_lab.importers import import_export
from crm_lab.replay import replay
from import_exports import fetch, stored_events, write_export

SPREADSHEET = """
opportunity_id,sales_agent,account,deal_stage,engage_date,close_date,close_value
1C1I7A6R,Moses Frase,Cancity,Won,2016-10-20,2017-03-01,1054
Z063OYW0,Darcel Schlecht,Isdom,Lost,2016-10-25,2017-03-11,0
EC4QE1BX,Darcel Schlecht,Cancity,Engaging,2016-10-25,,
"""
MAPPING = """
columns:
  deal_id: opportunity_id
  owner_rep_id: sales_agent
  account_id: account
  stage: deal_stage
  created_at: engage_date
  close_date: close_date
  amount: close_value
stages:
  Prospecting: prospecting
  Engaging: qualification
  Won: closed_won
  Lost: closed_lost
currency: USD
"""


def test_a_spreadsheet_row_is_created_at_its_engage_date_and_closed_at_its_close_date(tmp_path):
    folder = write_export(tmp_path / "pipeline", {"deals.csv": SPREADSHEET, "mapping.yaml": MAPPING})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "mapping.yaml")
    assert stored_events(db, "deal") == [
        ("1C1I7A6R", "deals-1C1I7A6R", "created", "2016-10-20T00:00:00Z", 2,
         {"account_id": "Cancity", "owner_rep_id": "Moses Frase", "stage": "prospecting", "amount": 1054.0,
          "currency": "USD", "expected_close_date": "2017-03-01"}),
        ("1C1I7A6R", "deals-1C1I7A6R:closed", "won", "2017-03-01T00:00:00Z", 4, {}),
        ("EC4QE1BX", "deals-EC4QE1BX", "created", "2016-10-25T00:00:00Z", 2,
         {"account_id": "Cancity", "owner_rep_id": "Darcel Schlecht", "stage": "qualification", "currency": "USD"}),
        ("Z063OYW0", "deals-Z063OYW0", "created", "2016-10-25T00:00:00Z", 2,
         {"account_id": "Isdom", "owner_rep_id": "Darcel Schlecht", "stage": "prospecting", "amount": 0.0,
          "currency": "USD", "expected_close_date": "2017-03-11"}),
        ("Z063OYW0", "deals-Z063OYW0:closed", "lost", "2017-03-11T00:00:00Z", 4, {}),
    ]  # fmt: skip
    replay(db)
    assert fetch(db, "SELECT company_id, deal_id, stage, amount, is_won FROM deals_current ORDER BY deal_id") == [
        ("pipeline", "1C1I7A6R", "closed_won", Decimal("1054.00"), True),
        ("pipeline", "EC4QE1BX", "qualification", None, None),
        ("pipeline", "Z063OYW0", "closed_lost", Decimal("0.00"), False),
    ]


def test_a_declared_date_format_reads_day_first_dates(tmp_path):
    text = SPREADSHEET.replace("2016-10-20", "20/10/2016").replace("2016-10-25", "25/10/2016")
    mapping = MAPPING + "dates:\n  engage_date: '%d/%m/%Y'\n"
    folder = write_export(tmp_path / "pipeline", {"deals.csv": text, "mapping.yaml": mapping})
    db = tmp_path / "crm.duckdb"
    import_export(db, folder / "deals.csv", fmt="mapped", mapping=folder / "mapping.yaml")
    assert fetch(db, "SELECT deal_id, strftime(created_at, '%Y-%m-%d') FROM deals ORDER BY 1") == [
        ("1C1I7A6R", "2016-10-20"),
        ("EC4QE1BX", "2016-10-25"),
        ("Z063OYW0", "2016-10-25"),
    ]
