"""Scenario files and knobs: what is accepted, and what is refused with the knob named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_lab.errors import InvalidArgument
from crm_lab.forecast.periods import as_of_dates, forecast_window
from crm_lab.forecast.scenarios import RepRemoval, Scenario, load_scenarios


def test_a_yaml_file_holds_one_scenario_or_a_list(tmp_path):
    one = tmp_path / "one.yaml"
    one.write_text("name: push\nwin_rate: 1.1\nstage_win_rate: {negotiation: 1.2}\nremove_reps: rep-0007\n")
    [scenario] = load_scenarios(one)
    assert scenario == Scenario(name="push", win_rate=1.1, stage_win_rate={"negotiation": 1.2},
                                remove_reps=(RepRemoval("rep-0007"),))
    many = tmp_path / "many.yml"
    many.write_text("scenarios:\n  - {name: a, slip_days: -7}\n  - {deal_size: 0.9}\n")
    names = [s.name for s in load_scenarios(many)]
    assert names == ["a", "scenario 2"]
    assert load_scenarios({"name": "x", "remove_reps": [{"rep": "r1", "deals": "lose"}]})[0].remove_reps == (RepRemoval("r1", "lose"),)
    assert load_scenarios(None) == []


@pytest.mark.parametrize("source, message", [
    ({"win_rate": -1}, "scenario win_rate must be >= 0, got -1"),
    ({"new_pipeline": 1e6}, r"^scenario new_pipeline must be at most 100 \(times the rate of new-pipeline wins\), got 1000000.0$"),
    ({"slip_days": "soon"}, "scenario slip_days must be a number, got 'soon'"),
    ({"colour": "red"}, "scenario knob 'colour' is unknown"),
    ({"stage_win_rate": [1, 2]}, "stage_win_rate must map stages to multipliers"),
    ({"remove_reps": [{"rep": "r1", "deals": "fire"}]}, "deals must be one of reassign, lose"),
    ({"name": "baseline", "win_rate": 2}, "'baseline' is reserved"),
    ([{"name": "a"}, {"name": "a"}], "scenario name 'a' is used twice"),
    ("name: [unclosed", "is not valid YAML"),
])
def test_bad_knobs_are_refused_with_the_knob_named(source, message):
    with pytest.raises(InvalidArgument, match=message):
        load_scenarios(source)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_scenarios(tmp_path / "nope.yaml")


def test_names_the_data_does_not_know_are_refused():
    scenario = Scenario(name="s", stage_win_rate={"closing": 1.1})
    with pytest.raises(InvalidArgument, match="unknown stage 'closing'; known: negotiation, proposal"):
        scenario.check(stages={"proposal", "negotiation"}, deal_ids=[], rep_ids=[])
    with pytest.raises(InvalidArgument, match="remove_reps names unknown rep 'r9'"):
        Scenario(name="s", remove_reps=(RepRemoval("r9"),)).check(stages=set(), deal_ids=[], rep_ids=["r1"])


def test_neutral_knobs_are_recognised():
    assert Scenario(name="x", stage_win_rate={"proposal": 1.0}).is_neutral
    assert not Scenario(exclude_deals=("d1",)).is_neutral
    assert Scenario().with_knob("stage_win_rate:proposal", 1.2).stage_win_rate == {"proposal": 1.2}


def test_windows_and_as_of_dates():
    window = forecast_window("2025-05-20 13:00", "year")
    assert (window.start.isoformat(), window.end.isoformat(), len(window.periods), window.label) == ("2025-01-01", "2026-01-01", 12, "2025")
    explicit = forecast_window("2025-05-20", "2025-07-15")
    assert [p.label for p in explicit.periods] == ["2025-05", "2025-06", "2025-07"] and explicit.periods[-1].last_day.isoformat() == "2025-07-15"
    with pytest.raises(InvalidArgument, match="horizon must be one of month, quarter, year or a date"):
        forecast_window("2025-05-20", "fortnight")
    assert [d.date().isoformat() for d in as_of_dates("2025-01-15", "2025-07-01", "quarter")] == ["2025-01-15", "2025-04-15"]
    with pytest.raises(InvalidArgument, match="every must be one of week, month, quarter"):
        as_of_dates("2025-01-01", "2025-02-01", "day")
    with pytest.raises(InvalidArgument, match="as_of must be a date or timestamp"):
        forecast_window("yesterday", "month")


def test_the_scenario_file_of_docs_forecast_is_the_one_shipped_and_reads():
    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "FORECAST.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "remove_reps" in b]
    shipped = (root / "docs" / "examples" / "what-if.yaml").read_text(encoding="utf-8")
    assert shipped.endswith(block)  # after its header comment
    scenarios = load_scenarios(root / "docs" / "examples" / "what-if.yaml")
    assert [s.name for s in scenarios] == ["stronger close", "slower quarter", "without Ada"]
