"""The package's layers (pyproject.toml, `[tool.importlinter]`) hold: no import runs up, no circle between parts."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


def test_every_top_level_part_has_a_layer():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    layered = {part.strip() for layer in contract["layers"] for part in layer.split("|")}
    parts = {
        path.stem if path.is_file() else path.name
        for path in (ROOT / "instrl_trl").iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").is_file()
    }
    assert parts == layered
    assert contract["layers"][0] == "cli" and contract["layers"][-1].startswith("constraints")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_lint_imports():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stdout + result.stderr
