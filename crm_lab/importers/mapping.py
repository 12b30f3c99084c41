"""The ``--mapping`` YAML file: which export column feeds which native field, what its stage
or status names mean, how its dates are written. Validated up front: every problem names the
file, its line and the fix.

For a generic export (HubSpot, a spreadsheet) ``columns`` is required, and ``kind`` says whether
its rows are deals (the default) or leads; for Salesforce the file may carry only ``stages``,
``lead_statuses``, ``activity_types`` and ``dates`` to extend the defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from crm_lab.contract import ACTIVITY_TYPES
from crm_lab.errors import LoadError
from crm_lab.importers.stages import DEAL_STAGES, LEAD_STATUSES

# Native fields a generic deals export can feed, and what each means there.
DEAL_COLUMNS = {
    "deal_id": "the deal's id",
    "stage": "its stage now",
    "created_at": "the engage / create date, when the deal was created",
    "close_date": "when it closed (closed deals) or is expected to (open deals)",
    "expected_close_date": "the expected close date, when the export has it apart from close_date",
    "amount": "the close value / amount",
    "currency": "the amount's currency code",
    "account_id": "the account (company) it is with",
    "owner_rep_id": "its owner (sales agent)",
    "name": "its name",
    "lost_reason": "why it was lost",
    "updated_at": "when the deal was last modified: dates the changes a later export brings",
}
REQUIRED_COLUMNS = ("deal_id", "stage", "created_at")
# Native fields a generic leads export (HubSpot contacts, a spreadsheet of leads) can feed.
LEAD_COLUMNS = {
    "lead_id": "the lead's id",
    "created_at": "the create date, when the lead was created",
    "status": "its status now (lead_statuses say which are open, converted, disqualified)",
    "converted_at": "when it converted (required for a converted lead)",
    "disqualified_at": "when it was disqualified (else at its creation)",
    "deal_id": "the deal it converted into",
    "account_id": "the account (company) it is with",
    "owner_rep_id": "its owner",
    "name": "its name",
    "first_name": "its first name (with last_name, when the export has no full name)",
    "last_name": "its last name",
    "source": "where it came from (original source)",
    "industry": "its industry",
    "employees": "its company's number of employees",
    "score": "the CRM's own lead score",
    "updated_at": "when the lead was last modified: dates the changes a later export brings",
}
REQUIRED_LEAD_COLUMNS = ("lead_id", "created_at")
KINDS = ("deals", "leads")
# What each kind of generic export may say besides columns and dates.
KIND_KEYS = {"deals": ("stages", "currency", "initial_stage", "lead_statuses", "activity_types"), "leads": ("lead_statuses",)}
KEYS = {
    "kind": "what one row of the export is: deals (default) or leads",
    "columns": "export column for each native field",
    "stages": "export stage name -> native stage",
    "lead_statuses": "export lead status -> native status (open, converted, disqualified)",
    "activity_types": "export task / event type -> call, email, meeting or task (Salesforce)",
    "dates": "export column -> its date format (strftime, e.g. '%d/%m/%Y')",
    "currency": "the currency of amounts when the export names none",
    "initial_stage": "the stage a deal is created in when the export only has its closed stage",
}


@dataclass(frozen=True)
class Mapping:
    path: Path | None = None
    kind: str = "deals"
    columns: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    lead_statuses: dict[str, str] = field(default_factory=dict)
    activity_types: dict[str, str] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    currency: str | None = None
    initial_stage: str = DEAL_STAGES[0]


def read_mapping(path: str | Path, *, generic: bool) -> Mapping:
    """Read and validate a mapping file; ``generic`` requires ``columns`` (a deals export)."""
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{path}: no such mapping file")
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise LoadError(f"{path} line {mark.line + 1}: not valid YAML: {error.problem}") from None
    if root is None:
        raise LoadError(f"{path}: the mapping file is empty")
    sections = _pairs(path, root, "the mapping file")
    values: dict = {}
    for key, (key_node, node) in sections.items():
        if key not in KEYS:
            raise LoadError(f"{path} line {_line(key_node)}: unknown key {key!r} (known: {', '.join(KEYS)})")
        if key in ("kind", "currency", "initial_stage"):
            values[key] = _scalar(path, node, key)
        else:
            pairs = _pairs(path, node, key)
            values[key] = {name: _scalar(path, value, f"{key}.{name}") for name, (_, value) in pairs.items()}
            values[f"_{key}_lines"] = {name: _line(name_node) for name, (name_node, _) in pairs.items()}
    columns = values.get("columns", {})
    kind = values.get("kind", "deals")
    if not generic:
        for key in ("columns", "kind"):
            if key in sections:
                raise LoadError(f"{path} line {_line(sections[key][0])}: {key} is for generic exports; Salesforce field names are fixed")
    if kind not in KINDS:
        raise LoadError(f"{path} line {_line(sections['kind'][1])}: kind: {kind!r} is not one of {', '.join(KINDS)}")
    known, required = (LEAD_COLUMNS, REQUIRED_LEAD_COLUMNS) if kind == "leads" else (DEAL_COLUMNS, REQUIRED_COLUMNS)
    for name, line in values.get("_columns_lines", {}).items():
        if name not in known:
            # The likeliest slip: a leads mapping that forgot to say so.
            hint = "; a leads export needs kind: leads" if kind == "deals" and name in LEAD_COLUMNS else ""
            raise LoadError(f"{path} line {line}: unknown native field {name!r} under columns (known: {', '.join(known)}){hint}")
    if generic:
        for key in sections:
            if key in KEYS and key not in ("kind", "columns", "dates") and key not in KIND_KEYS[kind]:
                raise LoadError(f"{path} line {_line(sections[key][0])}: {key} is for a deals export; this mapping is kind: {kind}")
        missing = [name for name in required if name not in columns]
        if missing:
            raise LoadError(
                f"{path}: missing required mapping{'s' if len(missing) > 1 else ''} "
                + ", ".join(f"columns.{name} ({known[name]})" for name in missing)
            )
    for key, choices in (("stages", DEAL_STAGES), ("lead_statuses", LEAD_STATUSES), ("activity_types", ACTIVITY_TYPES)):
        for name, native in values.get(key, {}).items():
            if native not in choices:
                raise LoadError(
                    f"{path} line {values[f'_{key}_lines'][name]}: {key}: {name!r} maps to {native!r}, "
                    f"which is not one of {', '.join(choices)}"
                )
    initial = values.get("initial_stage", DEAL_STAGES[0])
    if initial not in DEAL_STAGES[:4]:
        raise LoadError(f"{path} line {_line(sections['initial_stage'][0])}: initial_stage must be an open stage: {', '.join(DEAL_STAGES[:4])}")
    return Mapping(
        path=path,
        kind=kind,
        columns=columns,
        stages=values.get("stages", {}),
        lead_statuses=values.get("lead_statuses", {}),
        activity_types=values.get("activity_types", {}),
        dates=values.get("dates", {}),
        currency=values.get("currency"),
        initial_stage=initial,
    )


def _pairs(path: Path, node: yaml.Node, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """name -> (key node, value node): keys carry the line a message about them points at."""
    if not isinstance(node, yaml.MappingNode):
        raise LoadError(f"{path} line {_line(node)}: {where} must be a mapping of names to values")
    pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        name = _scalar(path, key, where)
        if name in pairs:
            raise LoadError(f"{path} line {_line(key)}: {name!r} appears twice under {where}")
        pairs[name] = (key, value)
    return pairs


def _scalar(path: Path, node: yaml.Node, where: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.value == "":
        raise LoadError(f"{path} line {_line(node)}: {where} must be a single value")
    return str(node.value)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1
