"""The README's tour works exactly as written (after `make demo`, which this suite's set-up
also provides: the same .venv)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tour_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", readme, flags=re.DOTALL).group(1)
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == ["make demo", "make test"]


def test_the_tour_runs_as_written():
    for leftover in ("data/generated/tour", "data/generated/tour.duckdb", "data/generated/02_replay.ipynb"):
        path = ROOT / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    outputs = []
    for command in tour_commands():
        done = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    # The second load of the same files changes nothing.
    assert "5049 read, 0 new, 5049 already loaded" in outputs[2]
    assert "replay 1 (full: first replay)" in outputs[3]
    assert (ROOT / "data/generated/02_replay.ipynb").exists()
