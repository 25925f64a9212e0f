"""`rewriter.constraint_families`: checked as a config is made; IFBench's test constraints never make training data."""

from pathlib import Path

import pytest
import yaml

from instrl_trl.cli.main import main as cli_main
from instrl_trl.generation import DatasetGenerationConfig
from instrl_trl.trainer import InstructionGenerationConfig
from instrl_trl.trainer.instructor import InstructorConfig


RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes" / "quickstart"
# stage -> its quickstart recipe: each draws training data through a rewriter
STAGE_RECIPES = {"generate": "generate.yaml", "train-policy": "policy.yaml", "train-instructor": "instructor.yaml"}


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp_path, rewriter: DatasetGenerationConfig(
            policy="someone/policy", output_dir=str(tmp_path), rewriter=rewriter
        ),
        lambda tmp_path, rewriter: InstructionGenerationConfig(output_dir=str(tmp_path), rewriter=rewriter),
        lambda tmp_path, rewriter: InstructorConfig(output_dir=str(tmp_path), rewriter=rewriter, use_cpu=True),
    ],
    ids=["generate", "train-policy", "train-instructor"],
)
def test_configs_check_the_families(tmp_path, make):
    with pytest.raises(ValueError, match=r"`rewriter.constraint_families` has unknown .*'ifevl'.*values: ifeval"):
        make(tmp_path, {"constraint_families": ["ifevl"]})
    with pytest.raises(ValueError, match=r"`rewriter.constraint_families` names `ifbench`.*contaminates.*iftrain"):
        make(tmp_path, {"constraint_families": ["ifeval", "ifbench"]})
    # from the command line the rewriter is a JSON string
    config = make(tmp_path, '{"constraint_families": ["ifeval"]}')
    assert config.rewriter == {"backend": "rules", "constraint_families": ["ifeval"]}


@pytest.mark.parametrize("stage", list(STAGE_RECIPES))
def test_a_recipe_naming_ifbench_fails_before_any_query(stage, tmp_path, capsys):
    recipe = yaml.safe_load((RECIPES_DIR / STAGE_RECIPES[stage]).read_text())
    output_dir = tmp_path / "run"
    recipe.update(output_dir=str(output_dir), rewriter={"constraint_families": ["ifbench"]})
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(recipe))

    assert cli_main([stage, "--config", str(path)]) == 1

    error = capsys.readouterr().err
    assert f"instrl-trl {stage}: error: `rewriter.constraint_families` names `ifbench`" in error
    assert "out-of-distribution benchmark" in error and "contaminates" in error
    assert "`iftrain`" in error  # IFTrain's training constraints: the family for training
    assert not output_dir.exists()  # the recipe failed as it was parsed: no shard, no response cache, no checkpoint
