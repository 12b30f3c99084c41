"""ipywidgets panels for what-if questions, shared by the notebooks and the Voilà dashboard.

- :class:`ForecastPanel`: scenario knobs -> fan chart, P10/P50/P90 and P(target);
- :class:`ThresholdPanel`: lead-score cut-off and SDR capacity -> curves and routed volume;
- :class:`TerritoryPanel`: workload and potential bands (each may be switched off), distance on or off,
  move budget and rep count -> map, balance and solver status.

Each recomputes only what its moved control changes, remembers recent settings, and shows a busy
state (controls locked) while the kernel works. Money is labelled with the company's currency.
:func:`shows_errors` turns a crm_lab error in a notebook cell into its message on the page.
"""

from crm_lab.widgets.forecast import ForecastPanel
from crm_lab.widgets.leads import ThresholdPanel, home_currency
from crm_lab.widgets.panel import shows_errors, what_if_as_of
from crm_lab.widgets.territory import TerritoryPanel

__all__ = ["ForecastPanel", "TerritoryPanel", "ThresholdPanel", "home_currency", "shows_errors", "what_if_as_of"]
