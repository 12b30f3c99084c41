"""crm_lab: a what-if workbench for revenue teams, built on DuckDB."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crm_lab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
