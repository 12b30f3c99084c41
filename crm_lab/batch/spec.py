"""Pipeline specs (``pipelines/*.yaml``), expanded and validated before any kernel starts.

```yaml
name: weekly
output: reports/weekly           # relative to the working directory (default reports/<name>)
timeout: 600                     # seconds per run (default 900)
parameters: {as_of: "2025-06-30 23:59:59"}   # given to every run whose notebook declares them
runs:
  - name: forecast-{team}-{scenario}
    notebook: notebooks/03_forecast.ipynb
    parameters: {trials: 2000}
    matrix: {team: [east, west], scenario: [base, stretch]}
```

A relative notebook path is looked for in the working directory, then in the spec's folder, then
in that folder's parent: a project's ``pipelines/weekly.yaml`` naming ``notebooks/03_forecast.ipynb``
runs from the project or from anywhere else (``crm-lab batch ../proj/pipelines/weekly.yaml``).
The output folder is relative to the working directory, and holds one batch at a time
(``<output>/.batch.lock`` names the batch writing there).

A matrix expands into one run per combination; its keys are parameters too, and fill the
``{placeholders}`` of the name. Papermill only warns about a parameter the notebook does not
declare; here it is an error naming the run and the parameter, as is a value whose type differs
from the notebook's default, a missing notebook, or a repeated run name."""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import papermill
import yaml

from crm_lab.errors import InvalidArgument
from crm_lab.forecast.periods import to_instant

DEFAULT_TIMEOUT_S = 900
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Parameters every batch run may receive without the spec naming them.
BATCH_PARAMETERS = ("db_path",)
# Notebook parameters that name an instant: a spec's value must read as one.
INSTANT_PARAMETERS = ("as_of", "t0", "t1")


class SpecError(InvalidArgument):
    """The pipeline spec is wrong; nothing was run."""


@dataclass(frozen=True)
class RunSpec:
    name: str
    notebook: Path
    parameters: dict[str, Any]
    timeout_s: int


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    path: Path
    output: Path
    runs: tuple[RunSpec, ...]
    declared: dict[str, dict] = field(default_factory=dict, compare=False, repr=False)


def load_spec(path: str | Path) -> PipelineSpec:
    """Read, expand and validate a pipeline spec."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such pipeline spec")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list) or not raw["runs"]:
        raise SpecError(f"{path}: a pipeline spec is a mapping with a non-empty list 'runs'")
    unknown = sorted(set(raw) - {"name", "output", "timeout", "parameters", "runs"})
    if unknown:
        raise SpecError(f"{path}: unknown key(s) {', '.join(unknown)} (known: name, output, timeout, parameters, runs)")
    name = str(raw.get("name") or path.stem)
    shared = _mapping(raw.get("parameters"), f"{path}: parameters")
    timeout = _timeout(raw.get("timeout", DEFAULT_TIMEOUT_S), f"{path}: timeout")
    runs: list[RunSpec] = []
    declared: dict[str, dict] = {}
    for index, entry in enumerate(raw["runs"], start=1):
        runs.extend(_expand(path, index, entry, shared, timeout, declared))
    seen: set[str] = set()
    for run in runs:
        if run.name in seen:
            raise SpecError(f"{path}: run name {run.name!r} appears more than once")
        seen.add(run.name)
    output = Path(raw.get("output") or f"reports/{name}")
    return PipelineSpec(name=name, path=path, output=output, runs=tuple(runs), declared=declared)


def _expand(path: Path, index: int, entry: Any, shared: dict, timeout: int, declared: dict) -> list[RunSpec]:
    where = f"{path}: run {index}"
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: a run is a mapping with name, notebook and parameters")
    unknown = sorted(set(entry) - {"name", "notebook", "parameters", "matrix", "timeout"})
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)} (known: name, notebook, parameters, matrix, timeout)")
    if "notebook" not in entry or "name" not in entry:
        raise SpecError(f"{where}: needs a name and a notebook")
    where = f"{path}: run {entry['name']!r}"
    notebook = find_notebook(path, Path(entry["notebook"]))
    if notebook is None:
        places = "" if Path(entry["notebook"]).is_absolute() else (
            f" (a relative path is looked for in the working directory {Path.cwd()}, then in the spec's folder "
            f"{path.resolve().parent} and its parent)")
        raise SpecError(f"{where}: notebook {entry['notebook']} does not exist{places}")
    if str(notebook) not in declared:
        declared[str(notebook)] = papermill.inspect_notebook(str(notebook))
    accepted = declared[str(notebook)]
    parameters = _mapping(entry.get("parameters"), f"{where}: parameters")
    matrix = _mapping(entry.get("matrix"), f"{where}: matrix")
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: matrix {key!r} must be a non-empty list, got {values!r}")
    run_timeout = _timeout(entry.get("timeout", timeout), f"{where}: timeout")
    combos = [dict(zip(matrix, values)) for values in itertools.product(*matrix.values())] if matrix else [{}]
    runs = []
    for combo in combos:
        try:
            name = str(entry["name"]).format(**combo)
        except (KeyError, IndexError) as error:
            raise SpecError(f"{where}: the name uses a placeholder {error} that is not a matrix key") from None
        if not NAME.fullmatch(name):
            raise SpecError(f"{where}: run name {name!r} must be letters, digits, '.', '_' or '-'")
        given = {**{k: v for k, v in shared.items() if k in accepted}, **parameters, **combo}
        if "results_dir" in given:
            raise SpecError(f"{path}: run {name!r}: results_dir is set by the batch (a folder per run and batch, "
                            "whose results it stores with the run); leave it out of the spec")
        check_parameters(f"{path}: run {name!r}", notebook, given, accepted)
        runs.append(RunSpec(name=name, notebook=notebook, parameters=given, timeout_s=run_timeout))
    return runs


def find_notebook(spec_path: Path, notebook: Path) -> Path | None:
    """A run's notebook: an absolute path as it is; a relative one in the working directory, else
    in the spec's folder, else in that folder's parent (the project, when its specs sit in
    ``pipelines/``: ``notebooks/02_replay.ipynb`` then works from any directory). None when none
    of them has it. Found in the working directory, the path stays as written."""
    if notebook.is_absolute() or notebook.is_file():
        return notebook if notebook.is_file() else None
    folder = spec_path.resolve().parent
    for base in (folder, folder.parent):
        if (base / notebook).is_file():
            return base / notebook
    return None


def check_parameters(where: str | None, notebook: Path, given: dict, accepted: dict) -> None:
    """Every given parameter is declared by the notebook (``papermill.inspect_notebook``) and has
    its default's type; the error names ``where`` (e.g. the spec and run; None when the caller
    adds its own prefix, as the command line's ``crm-lab dashboard:``), the parameter and what
    the notebook declares."""
    prefix = f"{where}: " if where else ""
    if not accepted:
        raise SpecError(f"{prefix}{notebook} has no cell tagged 'parameters'")
    for key, value in given.items():
        if key not in accepted:
            raise SpecError(
                f"{prefix}parameter {key!r} is not in {notebook}'s parameters cell "
                f"(it declares: {', '.join(accepted)})"
            )
        expected = _declared_type(accepted[key])
        if not _type_matches(expected, value):
            raise SpecError(
                f"{prefix}parameter {key!r} should be {expected} like the notebook's default "
                f"{accepted[key]['default']}, got {type(value).__name__} {value!r}"
            )
        if key in INSTANT_PARAMETERS and value is not None:
            # Checked here, not in the run: a notebook would fail on it minutes into a batch.
            try:
                to_instant(value, key)
            except InvalidArgument as error:
                raise SpecError(f"{prefix}{error}") from None


def _declared_type(declared: dict) -> str:
    """The notebook's type for a parameter: an annotation papermill read, else the type of the
    default's literal value ('None' when the default is None or not a literal)."""
    if declared.get("inferred_type_name") not in ("None", "", None):
        return declared["inferred_type_name"]
    try:
        default = ast.literal_eval(declared.get("default") or "None")
    except (ValueError, SyntaxError):
        return "None"
    return "None" if default is None else type(default).__name__


def _type_matches(expected: str, value: Any) -> bool:
    if expected in ("None", "", None) or value is None:
        return True  # a default of None accepts anything
    if expected == "bool":
        return isinstance(value, bool)
    if expected == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "str":
        return isinstance(value, str)
    if expected in ("list", "List"):
        return isinstance(value, list)
    if expected in ("dict", "Dict"):
        return isinstance(value, dict)
    return True


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{where} must be a mapping, got {value!r}")
    return dict(value)


def _timeout(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise SpecError(f"{where} must be a whole number of seconds > 0, got {value!r}")
    return value
