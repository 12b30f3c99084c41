"""Monte Carlo revenue forecast: learned from pipeline history, scenarios on common random
numbers, sensitivity, and backtests against the weighted pipeline.

Front doors (``crm-lab forecast`` and ``crm-lab backtest`` are thin shells over them):

- :func:`forecast`: fit as of an instant, simulate the baseline and scenarios, store the run;
- :func:`backtest`: forecast past windows with what was known then and score them;
- :func:`prepare` and :func:`run_scenarios`: the two halves of :func:`forecast`, for notebooks;
  :func:`scenario_samples`: one scenario's trials, for a dashboard that moves one knob at a time;
- :func:`tornado`: the sensitivity of P50 and P(target) to each knob.

Modules, one job each: ``periods`` (instants and windows), ``data`` (reads, SQL in
``crm_lab/sql/forecast/``), ``estimate`` (the estimators), ``scenarios`` (knobs), ``inputs`` (a
company's inputs and the portfolio a scenario makes of them), ``simulation`` (the vectorised
core), ``summary`` (result rows), ``sensitivity``, ``metrics`` (CRPS, pinball, the weighted
pipeline), ``backtesting``, ``run``, ``store`` (one short write), ``charts``, ``command`` (the
CLI's options). Names load on first use, so the CLI can import ``command`` cheaply.
"""

import importlib
from typing import Any

_EXPORTS = {
    "AmountChangeModel": "estimate",
    "BacktestResult": "backtesting",
    "CloseTimingModel": "estimate",
    "ForecastInputs": "inputs",
    "ForecastModel": "estimate",
    "ForecastResult": "run",
    "ModelOptions": "estimate",
    "NewPipelineModel": "estimate",
    "Portfolio": "simulation",
    "RepRemoval": "scenarios",
    "Scenario": "scenarios",
    "ScenarioRun": "run",
    "SimulationOutput": "simulation",
    "WinRateModel": "estimate",
    "Window": "periods",
    "as_of_dates": "periods",
    "backtest": "backtesting",
    "forecast": "run",
    "forecast_window": "periods",
    "label_snapshots": "estimate",
    "load_scenarios": "scenarios",
    "prepare": "run",
    "run_scenarios": "run",
    "scenario_samples": "run",
    "simulate": "simulation",
    "tornado": "sensitivity",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"crm_lab.forecast.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'crm_lab.forecast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
