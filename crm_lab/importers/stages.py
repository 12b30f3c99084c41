"""Stage, status and activity type names of a foreign CRM onto the native vocabulary: a default
table for Salesforce's standard picklists, the user's overrides, and an error that lists every
unknown name with the line of YAML that would map it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from crm_lab.contract import DEAL_STAGES_CLOSED, DEAL_STAGES_OPEN
from crm_lab.importers.problems import refuse

DEAL_STAGES = DEAL_STAGES_OPEN + DEAL_STAGES_CLOSED
CLOSED_STAGES_SQL = "(" + ", ".join(f"'{stage}'" for stage in DEAL_STAGES_CLOSED) + ")"
LEAD_STATUSES = ("open", "converted", "disqualified")

# Salesforce's default Opportunity stages (and their default probabilities' order).
SALESFORCE_STAGES = {
    "Prospecting": "prospecting",
    "Qualification": "qualification",
    "Needs Analysis": "qualification",
    "Value Proposition": "qualification",
    "Id. Decision Makers": "proposal",
    "Perception Analysis": "proposal",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiation",
    "Closed Won": "closed_won",
    "Closed Lost": "closed_lost",
}
SALESFORCE_LEAD_STATUSES = {
    "Open - Not Contacted": "open",
    "Working - Contacted": "open",
    "Closed - Converted": "converted",
    "Closed - Not Converted": "disqualified",
}
# Task.TaskSubtype (how the task was logged) and the standard Task / Event Type picklist values
# that say which kind of activity it was. 'Other' and custom values must be mapped.
SALESFORCE_ACTIVITY_TYPES = {
    "Call": "call",
    "Email": "email",
    "ListEmail": "email",
    "Task": "task",
    "Meeting": "meeting",
}


def resolve_names(
    seen: Mapping[str, tuple[Path, int, str | None] | tuple[Path, int, str | None, str]],
    defaults: Mapping[str, str],
    overrides: Mapping[str, str],
    *,
    section: str,
    what: str,
    choices: tuple[str, ...],
) -> dict[str, str]:
    """Map every name ``seen`` (name -> first file, line, a native value the export itself
    implies, e.g. closed_won for a stage its opportunities mark IsWon, and optionally the field
    it was read from) to a native value.

    Names match exactly, then case-insensitively; overrides win over the defaults, which win
    over what the export implies. Refuses (:func:`crm_lab.importers.problems.refuse`) listing every
    name left unmapped; while problems are collected, the names it knows are returned."""
    table = {**{k.lower(): v for k, v in defaults.items()}, **{k.lower(): v for k, v in overrides.items()}}
    mapped: dict[str, str] = {}
    unknown = []
    for name, (path, line, implied, *field) in seen.items():
        native = overrides.get(name) or table.get(name.lower()) or implied
        if native is None:
            unknown.append((name, path, f"{line}, field {field[0]}" if field else line))
        else:
            mapped[name] = native
    if unknown:
        lines = [f"unknown {what} name{'s' if len(unknown) > 1 else ''}:"]
        lines += [f"  {name!r} (first at {path} line {line})" for name, path, line in unknown]
        lines.append(f"add to a mapping file (--mapping FILE), each with the one of {', '.join(choices)} it means:")
        lines.append(f"{section}:")
        lines += [f"  {_yaml_key(name)}: {choices[0]}" for name, _, _ in unknown]
        refuse("\n".join(lines))  # noted with the import's other problems, when it collects them
    return mapped


def name_table(con: duckdb.DuckDBPyConnection, table: str, names: Mapping[str, str]) -> None:
    """``table(name, native)``: what SQL joins an export's names through."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (name VARCHAR, native VARCHAR)")
    if names:
        con.executemany(f"INSERT INTO {table} VALUES (?, ?)", list(names.items()))


def _yaml_key(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
