"""
`rewriter.constraint_families`: checked as a config is made; IFBench's test constraints never make training data, and
`[ifeval, iftrain]` (IF-RLVR's training set-up) makes rows verified by IFTrain's checkers.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard

from instrl_trl.cli.main import main as cli_main
from instrl_trl.constraints import Constraint, family_of, iftrain
from instrl_trl.data.loading import load_dataset_by_name
from instrl_trl.data.training_constraints import read_training_constraints
from instrl_trl.generation import DatasetGenerationConfig, run_generate
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
    with pytest.raises(
        ValueError, match=r"`rewriter.constraint_families` names `ifbench`.*contaminates.*\[ifeval, iftrain\]"
    ):
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
    # IFTrain's training constraints beside IFEval's: the families for training, and a valid value
    assert "use `[ifeval, iftrain]` (or `[iftrain]`)" in error and error.endswith("valid values: ifeval, iftrain.\n")
    assert not output_dir.exists()  # the recipe failed as it was parsed: no shard, no response cache, no checkpoint


def test_generate_with_ifeval_and_iftrain_verifies_iftrain_rows_with_our_checkers(tmp_path, monkeypatch):
    # every call of an IFTrain checker is recorded: the rows' verdicts must come from them
    checked = Counter()
    for checker_class in set(iftrain.CHECKERS.values()):

        def spy(self, response, _check=checker_class.check):
            checked[type(self).__name__] += 1
            return _check(self, response)

        monkeypatch.setattr(checker_class, "check", spy)
    output_dir = tmp_path / "dataset"
    config = DatasetGenerationConfig(
        policy="sequence:add_constraints,add_constraints,add_constraints",
        output_dir=str(output_dir),
        keep_unverified=True,
        dedup_threshold=1.0,
        max_seeds=16,
        rewriter={"constraint_families": ["ifeval", "iftrain"]},
    )
    run_generate(config)

    rows = load_dataset_by_name(str(output_dir / "data")).to_list()
    families = Counter()
    for row in rows:
        constraints = [Constraint(c["instruction_id"], json.loads(c["kwargs"])) for c in row["constraints"]]
        families.update(c.family for c in constraints)
        verdicts = [
            iftrain.follows(iftrain.build_checker(c.instruction_id, c.kwargs), row["response"])
            if c.family == "iftrain"
            else c.check(row["response"])
            for c in constraints
        ]
        if constraints:  # the row's verdict is the conjunction of the checkers' verdicts on its response
            assert row["verified"] == all(verdicts)
    assert families["iftrain"] >= 5 and families["ifeval"] >= 5 and set(families) == {"ifeval", "iftrain"}
    assert sum(checked.values()) >= families["iftrain"]  # generation itself ran our checkers
    # the dataset card lists the ids by family, IFTrain's among them
    ids = read_training_constraints(str(output_dir / "data"))["constraint_ids"]
    card = DatasetCard.load(output_dir / "README.md").content
    iftrain_ids = [instruction_id for instruction_id in ids if instruction_id in iftrain.CHECKERS]
    assert iftrain_ids
    for instruction_id, count in ids.items():
        assert f"| `{instruction_id}` | {family_of(instruction_id)} | {count} |" in card
