"""Declarative what-if scenarios: knobs given as a dict or YAML, checked against the data.

A scenario file holds one scenario (a mapping), a list of them, or ``{scenarios: [...]}``::

    name: stronger close
    win_rate: 1.1                  # x every win probability, and the rate of new-pipeline wins
    stage_win_rate: {negotiation: 1.2}
    deal_size: 0.95                # x every amount not yet booked (open deals and new pipeline)
    slip_days: 14                  # every close moves later by 14 days (earlier if negative)
    new_pipeline: 0.8              # x the rate of new-pipeline wins
    include_deals: [deal-000012, deal-000031]   # only these open deals count
    exclude_deals: [deal-000123]
    remove_reps:
      - rep-0007                   # their deals and new pipeline go to their teammates
      - {rep: rep-0009, deals: lose}              # ... or are lost
      - {rep: rep-0011, deals: reassign, to: rep-0002}

Every knob at its neutral value (1, 0, nothing listed) is the baseline exactly: same random
numbers, same results. Win probabilities are capped at 1 after a multiplier (a new deal's too,
so ``win_rate`` scales new-pipeline wins by at most 1 / its win probability); ``new_pipeline``
is at most 100.

Examples
--------
>>> s = Scenario.from_dict({"name": "late", "slip_days": 30, "stage_win_rate": {"proposal": 0.9}})
>>> s.slip_days, dict(s.stage_win_rate), s.is_neutral
(30.0, {'proposal': 0.9}, False)
>>> Scenario().is_neutral
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from crm_lab.errors import InvalidArgument

REMOVAL_MODES = ("reassign", "lose")
MAX_NEW_PIPELINE = 100.0


@dataclass(frozen=True)
class RepRemoval:
    """A rep who leaves: their open deals and their share of new pipeline are reassigned (to
    ``to``, or spread over the active teammates with a bookings quota) or lost."""

    rep: str
    deals: str = "reassign"
    to: str | None = None


def _number(name: str, value, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"scenario {name} must be a number, got {value!r}")
    if positive and value < 0:
        raise InvalidArgument(f"scenario {name} must be >= 0, got {value!r}")
    return float(value)


def _ids(name: str, value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"scenario {name} must be a list of ids, got {value!r}")
    return tuple(value)


def _removal(value) -> RepRemoval:
    if isinstance(value, str):
        return RepRemoval(value)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"rep", "deals", "to"})
        if unknown or "rep" not in value:
            raise InvalidArgument(f"scenario remove_reps entries need 'rep' (and optionally 'deals', 'to'), got {dict(value)!r}")
        deals = value.get("deals", "reassign")
        if deals not in REMOVAL_MODES:
            raise InvalidArgument(f"scenario remove_reps deals must be one of {', '.join(REMOVAL_MODES)}, got {deals!r}")
        return RepRemoval(str(value["rep"]), deals, value.get("to"))
    raise InvalidArgument(f"scenario remove_reps entries must be a rep id or a mapping, got {value!r}")


@dataclass(frozen=True)
class Scenario:
    """The knobs of one what-if (see the module notes)."""

    name: str = "baseline"
    win_rate: float = 1.0
    stage_win_rate: Mapping[str, float] = field(default_factory=dict)
    deal_size: float = 1.0
    slip_days: float = 0.0
    new_pipeline: float = 1.0
    include_deals: tuple[str, ...] | None = None
    exclude_deals: tuple[str, ...] = ()
    remove_reps: tuple[RepRemoval, ...] = ()

    @classmethod
    def from_dict(cls, values: Mapping) -> Scenario:
        """A scenario from a mapping of knobs; an unknown knob or a bad value is refused."""
        if isinstance(values, Scenario):
            return values
        if not isinstance(values, Mapping):
            raise InvalidArgument(f"a scenario must be a mapping of knobs, got {values!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidArgument(f"scenario knob {unknown[0]!r} is unknown; known: {', '.join(sorted(known))}")
        out = {}
        if "name" in values:
            if not isinstance(values["name"], str) or not values["name"].strip():
                raise InvalidArgument(f"scenario name must be non-empty text, got {values['name']!r}")
            out["name"] = values["name"].strip()
        for key in ("win_rate", "deal_size", "new_pipeline"):
            if key in values:
                out[key] = _number(key, values[key], positive=True)
        if out.get("new_pipeline", 1.0) > MAX_NEW_PIPELINE:
            # Each new-pipeline win is drawn one by one: a thousandfold rate is a typo that would
            # draw billions of wins, not a what-if.
            raise InvalidArgument(
                f"scenario new_pipeline must be at most {MAX_NEW_PIPELINE:g} (times the rate of new-pipeline wins), "
                f"got {values['new_pipeline']!r}"
            )
        if "slip_days" in values:
            out["slip_days"] = _number("slip_days", values["slip_days"])
        if "stage_win_rate" in values:
            stages = values["stage_win_rate"] or {}
            if not isinstance(stages, Mapping):
                raise InvalidArgument(f"scenario stage_win_rate must map stages to multipliers, got {stages!r}")
            out["stage_win_rate"] = {str(k): _number(f"stage_win_rate[{k}]", v, positive=True) for k, v in stages.items()}
        if values.get("include_deals") is not None:
            out["include_deals"] = _ids("include_deals", values["include_deals"])
        if "exclude_deals" in values:
            out["exclude_deals"] = _ids("exclude_deals", values["exclude_deals"] or [])
        if "remove_reps" in values:
            reps = values["remove_reps"] or []
            out["remove_reps"] = tuple(_removal(r) for r in (reps if isinstance(reps, (list, tuple)) else [reps]))
        return cls(**out)

    @property
    def is_neutral(self) -> bool:
        return (
            self.win_rate == 1 and all(v == 1 for v in self.stage_win_rate.values()) and self.deal_size == 1
            and self.slip_days == 0 and self.new_pipeline == 1 and self.include_deals is None
            and not self.exclude_deals and not self.remove_reps
        )

    def with_knob(self, knob: str, value, name: str | None = None) -> Scenario:
        """A copy with one knob set (``stage_win_rate:<stage>`` sets one stage's multiplier)."""
        if knob.startswith("stage_win_rate:"):
            stage = knob.split(":", 1)[1]
            return replace(self, name=name or self.name, stage_win_rate={**self.stage_win_rate, stage: float(value)})
        return replace(self, name=name or self.name, **{knob: value})

    def check(self, *, stages, deal_ids, rep_ids, companies=(), elsewhere=None) -> None:
        """Refuse names the data does not know: a stage, an open deal, a rep.

        ``deal_ids`` and ``rep_ids`` are those of the companies forecast (``companies``); an id
        found only in ``elsewhere`` (``{"deals": {id: companies}, "reps": {id: companies}}``, the
        companies not forecast) is refused with the company it belongs to."""
        stages, deal_ids, rep_ids = set(stages), set(deal_ids), set(rep_ids)
        elsewhere = elsewhere or {}
        forecasting = ", ".join(companies)

        def other(kind: str, key: str) -> str | None:
            owners = sorted(elsewhere.get(kind, {}).get(key, ()))
            if not owners:
                return None
            what = "an open deal" if kind == "deals" else "a rep"
            when = " at the as-of" if kind == "deals" else ""
            return (f"{what} of company {', '.join(owners)}{when}, which this run does not forecast (it forecasts "
                    f"{forecasting}); name {kind} of the companies forecast, or forecast company {owners[0]}")

        for stage in self.stage_win_rate:
            if stage not in stages:
                raise InvalidArgument(
                    f"scenario {self.name!r}: stage_win_rate names unknown stage {stage!r}; known: {', '.join(sorted(stages))}"
                )
        for name, ids in (("include_deals", self.include_deals or ()), ("exclude_deals", self.exclude_deals)):
            missing = [d for d in ids if d not in deal_ids]
            if missing:
                where = other("deals", missing[0])
                raise InvalidArgument(
                    f"scenario {self.name!r}: {name} names {missing[0]!r}, "
                    + (where or "which is not an open deal at the as-of")
                )
        for removal in self.remove_reps:
            for rep in (removal.rep, removal.to):
                if rep is not None and rep not in rep_ids:
                    where = other("reps", rep)
                    raise InvalidArgument(
                        f"scenario {self.name!r}: remove_reps names "
                        + (f"{rep!r}, {where}" if where else f"unknown rep {rep!r}")
                    )


def load_scenarios(source) -> list[Scenario]:
    """Scenarios from a YAML file path, YAML text, a mapping, a list, or Scenario objects.

    Names must be unique and must not be ``baseline`` (the neutral run every comparison is
    against)."""
    if source is None:
        return []
    if isinstance(source, Scenario):
        items = [source]
    elif isinstance(source, (str, os.PathLike)) and (isinstance(source, os.PathLike) or "\n" not in source) \
            and Path(source).suffix.lower() in (".yaml", ".yml", ".json"):
        path = Path(source)
        if not path.exists():
            raise InvalidArgument(f"scenario file {str(path)!r} does not exist")
        items = _parse_yaml(path.read_text(encoding="utf-8"), str(path))
    elif isinstance(source, str):
        items = _parse_yaml(source, "scenario text")
    elif isinstance(source, Mapping):
        items = source.get("scenarios", [source]) if "scenarios" in source else [source]
    elif isinstance(source, (list, tuple)):
        items = list(source)
    else:
        raise InvalidArgument(f"scenario must be a YAML file, YAML text, a mapping or a list, got {source!r}")
    scenarios = []
    for index, item in enumerate(items):
        scenario = Scenario.from_dict(item)
        if scenario.name == "baseline" and not (isinstance(item, Mapping) and "name" in item):
            scenario = replace(scenario, name=f"scenario {index + 1}")
        scenarios.append(scenario)
    names = [s.name for s in scenarios]
    if "baseline" in names:
        raise InvalidArgument("scenario name 'baseline' is reserved for the run without knobs")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgument(f"scenario name {duplicates[0]!r} is used twice")
    return scenarios


def _parse_yaml(text: str, where: str) -> list:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidArgument(f"{where} is not valid YAML: {error}") from None
    if isinstance(data, Mapping) and "scenarios" in data:
        data = data["scenarios"]
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, list):
        return data
    raise InvalidArgument(f"{where} must hold a scenario mapping or a list of them, got {data!r}")
