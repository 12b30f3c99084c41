"""Lead scoring and exact threshold sweeps (``crm-lab sweep-leads``).

Pure cores (arrays and polars frames in, frames and dataclasses out, no I/O):

- :func:`sweep`: every distinct score as a routing cut-off, from one sort and cumulative sums;
- :func:`best_cutoff`: the best cut-off for an objective under the capacity limit;
- :func:`bootstrap_sweep`: the sweep and its best cut-off with bootstrap confidence bands;
- :class:`ConversionModel` and :func:`calibration_report`: a regularised logistic conversion
  model and how well calibrated its probabilities are;
- :func:`grid_sweep` and :class:`RoutedRevenueSimulation`: any function over a grid of scenario
  knobs on common random numbers, and a small Monte Carlo of revenue from routed leads.

The database layer: :func:`analyse_leads` reads a workbench (read-only) and runs the whole study
per company; :func:`sweep_leads` does the same and stores the results in ``lead_sweeps`` and
``lead_sweep_runs``.

Modules, one job each: ``thresholds`` (the sweep and the best cut-off), ``bootstrap``,
``model``, ``calibration``, ``grid``, ``revenue``, ``features`` (reads, SQL in
``crm_lab/sql/leads/``), ``analysis`` (the time split and the study), ``store`` (one short
write), ``charts``, ``command`` (the CLI's options). Names load on first use, so the CLI can
import ``command`` cheaply.
"""

import importlib
from typing import Any

# Public name -> module. Imported on first use, so that `crm_lab.leads.command` (which the CLI's
# parser imports) does not pull numpy, scipy and polars into every crm-lab command.
_EXPORTS = {
    "BootstrapSweep": "bootstrap",
    "CalibrationReport": "calibration",
    "ConversionModel": "model",
    "CutoffChoice": "thresholds",
    "LeadSweepResult": "analysis",
    "LeadSweepSettings": "analysis",
    "RoutedRevenueSimulation": "revenue",
    "RoutingEconomics": "thresholds",
    "SweepLeadsReport": "store",
    "analyse_leads": "analysis",
    "best_cutoff": "thresholds",
    "bootstrap_sweep": "bootstrap",
    "calibration_report": "calibration",
    "grid_sweep": "grid",
    "sweep": "thresholds",
    "sweep_leads": "store",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crm_lab.leads' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"crm_lab.leads.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
