"""`rewriter.constraint_families`: checked when a config is made, and IFBench constraints in generated rows."""

import json

import pytest

from instrl_trl.constraints import Constraint, check_row, ifbench
from instrl_trl.generation import DatasetGenerationConfig, generate_dataset
from instrl_trl.generation.shards import list_shards
from instrl_trl.trainer import InstructionGenerationConfig


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp_path, rewriter: DatasetGenerationConfig(
            policy="someone/policy", output_dir=str(tmp_path), rewriter=rewriter
        ),
        lambda tmp_path, rewriter: InstructionGenerationConfig(output_dir=str(tmp_path), rewriter=rewriter),
    ],
    ids=["generate", "train-policy"],
)
def test_configs_check_the_families(tmp_path, make):
    with pytest.raises(ValueError, match=r"`rewriter.constraint_families` has unknown .*'ifevl'.*ifeval, ifbench"):
        make(tmp_path, {"constraint_families": ["ifevl"]})
    # from the command line the rewriter is a JSON string
    config = make(tmp_path, '{"constraint_families": ["ifeval", "ifbench"]}')
    assert config.rewriter == {"backend": "rules", "constraint_families": ["ifeval", "ifbench"]}


def independent_verdict(row: dict) -> bool | None:
    """The row's verdict recomputed per family: IFBench's checkers on IFBench ids, lm-eval's on IFEval ids."""
    if not row["constraints"]:
        return None
    verdicts = []
    for constraint in row["constraints"]:
        instruction_id, kwargs = constraint["instruction_id"], json.loads(constraint["kwargs"])
        if instruction_id in ifbench.CHECKERS:
            verdicts += ifbench.check_row(row["response"], [instruction_id], [kwargs]).strict
        else:
            verdicts += check_row(row["response"], [instruction_id], [kwargs], prompt=row["instruction"]).strict
    return all(verdicts)


def test_generated_rows_carry_ifbench_constraints(tiny_policy, quickstart_seeds, tmp_path):
    from datasets import load_dataset

    config = DatasetGenerationConfig(
        policy=tiny_policy,
        output_dir=str(tmp_path / "dataset"),
        rewriter={"constraint_families": ["ifeval", "ifbench"]},
        batch_size=8,
        keep_unverified=True,
        dedup_threshold=1.0,
        greedy=False,
        max_seeds=24,
    )
    generate_dataset(config, quickstart_seeds)
    files = [str(path) for path in list_shards(config.output_dir)]
    rows = load_dataset("parquet", data_files=files, split="train").to_list()
    families, ifbench_verdicts = set(), set()
    for row in rows:
        constraints = [Constraint.from_dict({**c, "kwargs": json.loads(c["kwargs"])}) for c in row["constraints"]]
        families |= {c.family for c in constraints}
        for constraint in constraints:
            assert constraint.description() in row["instruction"]
        assert row["verified"] is independent_verdict(row), row
        if "ifbench" in {c.family for c in constraints}:
            ifbench_verdicts.add(row["verified"])
    assert "ifbench" in families
    # the rules expert's generic answer breaks most IFBench constraints: the comparison above is not met by "True"
    assert False in ifbench_verdicts
