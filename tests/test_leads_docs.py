"""The Examples sections of the crm_lab.leads docstrings run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["thresholds", "bootstrap", "calibration", "model", "grid", "revenue", "store"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"crm_lab.leads.{name}")
    failures, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
    assert attempted > 0 or name == "store"  # the store's example needs a database (skipped)
