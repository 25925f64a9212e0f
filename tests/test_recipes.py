import importlib
import os
from pathlib import Path

import pytest
import yaml

from instrl_trl.cli.main import STAGES


REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES_DIR = REPO_ROOT / "recipes"
# recipe stem (before any `_variant`) -> CLI stage; stems not listed here have no CLI stage yet
RECIPE_STAGES = {
    "policy": "train-policy",
    "generate": "generate",
    "sft": "sft",
    "pipeline": "pipeline",
    "evaluate": "evaluate",
    "instructor": "train-instructor",
}
RECIPES = sorted(
    path for path in RECIPES_DIR.glob("**/*.yaml") if RECIPES_DIR / "accelerate_configs" not in path.parents
)


def recipe_id(path: Path) -> str:
    return str(path.relative_to(RECIPES_DIR))


def recipe_stage(path: Path) -> str:
    return path.stem.split("_", 1)[0]


@pytest.fixture
def restore_environ():
    """TrlParser exports a recipe's `env:` block to `os.environ`; undo it after the test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_recipe_stages_are_cli_stages():
    assert set(RECIPE_STAGES.values()) <= set(STAGES)


@pytest.mark.parametrize("path", RECIPES, ids=recipe_id)
def test_recipe_parses_with_its_stage_parser(path, restore_environ, monkeypatch):
    stem = recipe_stage(path)
    if stem not in RECIPE_STAGES:
        pytest.fail(f"recipe stage {stem!r} has no CLI stage: add it to RECIPE_STAGES")
    monkeypatch.chdir(REPO_ROOT)  # recipes name files relative to the repository root
    module = importlib.import_module(STAGES[RECIPE_STAGES[stem]])
    parsed = module.make_parser(prog=f"instrl-trl {RECIPE_STAGES[stem]}").parse_args_and_config(
        ["--config", str(path)]
    )
    assert parsed, f"{recipe_id(path)} parsed into nothing"


@pytest.mark.parametrize("path", RECIPES, ids=recipe_id)
def test_recipe_sets_output_dir_and_hub_model_id(path):
    recipe = yaml.safe_load(path.read_text())
    assert isinstance(recipe, dict), f"{recipe_id(path)} is not a YAML mapping"
    assert recipe.get("output_dir"), f"{recipe_id(path)} does not set `output_dir`"
    assert str(recipe["output_dir"]).startswith("data/"), "`output_dir` should be `data/<run>`"
    # The generation stage pushes a dataset (and the policy), the others a model; the pipeline's stage recipes set
    # their own
    stage = path.stem.split("_")[0]
    if stage == "pipeline":
        return
    hub_key = "hub_dataset_id" if stage == "generate" else "hub_model_id"
    assert recipe.get(hub_key), f"{recipe_id(path)} does not set `{hub_key}`"
