"""J.E. Beasley's OR-Library GAP instances (the standard benchmark of the assignment core).

A file is a token stream: ``P``, then ``P`` times ``m n``, the cost matrix (m agents x n jobs),
the resource matrix (m x n) and the capacities (m). Agents are reps and jobs are accounts, so
:class:`GapInstance` holds the matrices transposed to accounts x reps, as
:func:`crm_lab.territory.assign` takes them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class GapInstance:
    name: str
    cost: np.ndarray  # accounts (jobs) x reps (agents)
    workload: np.ndarray  # accounts x reps
    capacity: np.ndarray  # reps

    @property
    def shape(self) -> tuple[int, int]:
        """(reps, accounts), i.e. OR-Library's (m, n)."""
        return self.cost.shape[1], self.cost.shape[0]


@dataclass(frozen=True)
class KnownValue:
    instance: str
    sense: str
    best_known: float
    bound: float
    proven_optimal: bool


def instance_name(file_stem: str, m: int, n: int, position: int) -> str:
    """OR-Library's names: ``gap1`` ... ``gap12`` hold ``c{m}{n}-{k}`` (k from 1), ``gapa`` ...
    ``gapd`` hold ``{type}{m:02d}{n}``.

    Examples
    --------
    >>> instance_name("gap1", 5, 15, 0), instance_name("gapd", 20, 200, 5)
    ('c515-1', 'd20200')
    """
    suffix = file_stem.removeprefix("gap")
    if suffix.isdigit():
        return f"c{m}{n}-{position + 1}"
    return f"{suffix}{m:02d}{n}"


def parse_gap_text(text: str, file_stem: str) -> list[GapInstance]:
    """The instances of one OR-Library GAP file's text."""
    tokens = np.array(text.split(), dtype=np.int64)
    count, at = int(tokens[0]), 1
    instances = []
    for position in range(count):
        m, n = int(tokens[at]), int(tokens[at + 1])
        at += 2
        cost = tokens[at : at + m * n].reshape(m, n)
        at += m * n
        resource = tokens[at : at + m * n].reshape(m, n)
        at += m * n
        capacity = tokens[at : at + m]
        at += m
        instances.append(
            GapInstance(instance_name(file_stem, m, n, position), cost.T.astype(float), resource.T.astype(float),
                        capacity.astype(float))
        )
    if at != len(tokens):
        raise ValueError(f"{file_stem}: {len(tokens) - at} token(s) left after {count} instance(s)")
    return instances


def read_gap_file(path: str | Path) -> list[GapInstance]:
    """Every instance in one ``gap*.txt`` file."""
    path = Path(path)
    return parse_gap_text(path.read_text(encoding="ascii"), path.stem)


def read_known_values(path: str | Path) -> dict[tuple[str, str], KnownValue]:
    """``known_values.tsv`` keyed by (instance, sense)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {
        (row["instance"], row["sense"]): KnownValue(
            row["instance"], row["sense"], float(row["best_known"]), float(row["lower_or_upper_bound"]),
            row["proven_optimal"].strip().lower() == "true",
        )
        for row in rows
    }
