"""The Examples sections of the territory modules run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["advice", "check", "data", "diagnose", "gap", "geo", "inputs", "model", "orlib", "report", "rules", "solve", "synthetic", "whatif"]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(f"crm_lab.territory.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
