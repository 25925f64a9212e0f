"""The policy-kind dispatch of the generation stage: which kind a `policy` value is, and the baselines' rows."""

import pytest
from datasets import load_dataset
from transformers import BertConfig, BertModel

from instrl_trl.generation import DatasetGenerationConfig, generate_dataset
from instrl_trl.generation.builder import run_generate
from instrl_trl.generation.card import dataset_statistics
from instrl_trl.generation.policies import (
    BASELINE_KINDS,
    POLICY_KINDS,
    InstructorPolicy,
    PPOPolicy,
    describe_policy,
    load_generation_policy,
    policy_kind,
)
from instrl_trl.generation.shards import ShardWriter, list_shards
from instrl_trl.operations import build_operation_library
from tests.simulated_kill import SimulatedKill


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory) -> str:
    from instrl_trl.models.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-causal-lm")))


def test_a_classifier_with_stop_label_is_a_ppo_policy(tiny_policy):
    assert policy_kind(tiny_policy) == "ppo"
    loaded = load_generation_policy(tiny_policy)
    assert isinstance(loaded, PPOPolicy)
    assert loaded.operations.names == build_operation_library().names


def test_a_causal_lm_is_an_instructor(tiny_causal_lm):
    assert policy_kind(tiny_causal_lm) == "instructor"
    with pytest.warns(UserWarning, match="instructor.json"):
        loaded = load_generation_policy(tiny_causal_lm)
    assert isinstance(loaded, InstructorPolicy)
    # Without the file saved by `train-instructor`, its tools are the whole library
    assert loaded.operations.names == build_operation_library().names


def test_instructor_tools_come_from_its_instructor_file(tiny_causal_lm, tmp_path):
    import json
    import shutil

    folder = shutil.copytree(tiny_causal_lm, tmp_path / "instructor")
    (folder / "instructor.json").write_text(json.dumps({"operations": ["breadth", "deepening"], "task_prompt": "Go."}))
    loaded = load_generation_policy(str(folder))
    assert (loaded.operations.names, loaded.task_prompt) == (["breadth", "deepening"], "Go.")

    (folder / "instructor.json").write_text(json.dumps({"operations": ["teleport"]}))
    with pytest.raises(ValueError, match=r"chooses operations \['teleport'\] that are not defined"):
        load_generation_policy(str(folder))


@pytest.mark.parametrize("kind", ["a bare encoder", "an empty folder"])
def test_a_folder_that_is_neither_fails_naming_policy_and_the_kinds(tmp_path, kind):
    folder = tmp_path / "model"
    folder.mkdir()
    if kind == "a bare encoder":
        BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
                             vocab_size=32)).save_pretrained(folder)  # fmt: skip
    with pytest.raises(ValueError, match="`policy`") as info:
        policy_kind(str(folder))
    for name in ("train-policy", "train-instructor", "'uniform'", "'no_repeat'", "'sequence:"):
        assert name in str(info.value)


def test_baselines_are_named_by_the_value():
    assert policy_kind("uniform") == "uniform"
    assert policy_kind("no_repeat") == "no_repeat"
    assert policy_kind("sequence:deepening,breadth") == "sequence"
    assert set(POLICY_KINDS) == {"ppo", "instructor", "uniform", "no_repeat", "sequence", "bandit"}
    assert set(BASELINE_KINDS) == {"uniform", "no_repeat", "sequence", "bandit"}
    assert "none repeated" in describe_policy("no_repeat")
    with pytest.raises(ValueError, match="teleport"):
        load_generation_policy("sequence:deepening,teleport")


def _rows(output_dir) -> list[dict]:
    files = [str(path) for path in list_shards(output_dir)]
    return load_dataset("parquet", data_files=files, split="train").to_list()


def _config(tmp_path, policy, **overrides) -> DatasetGenerationConfig:
    kwargs = {"policy": policy, "output_dir": str(tmp_path / "dataset"), "batch_size": 4, "max_seeds": 8,
              "keep_intermediate": True, "keep_unverified": True, "dedup_threshold": 1.0}  # fmt: skip
    return DatasetGenerationConfig(**{**kwargs, **overrides})


def test_sequence_baseline_applies_its_operations_in_order(quickstart_seeds, tmp_path):
    config = _config(tmp_path, "sequence:add_constraints,concretizing")
    generate_dataset(config, quickstart_seeds)
    rows = _rows(config.output_dir)
    assert rows
    for row in rows:
        assert row["operations"] == ["add_constraints", "concretizing"][: len(row["operations"])]
    assert any(row["depth"] == 2 for row in rows)


def test_uniform_baseline_is_seeded_by_batch(quickstart_seeds, tmp_path):
    # The same seeds in batches of 4, then resumed from the second batch, draw the same operations
    whole = _config(tmp_path / "whole", "uniform")
    generate_dataset(whole, quickstart_seeds)
    rows = _rows(whole.output_dir)
    names = set(build_operation_library().names)
    assert {name for row in rows for name in row["operations"]} <= names
    assert len({tuple(row["operations"]) for row in rows}) > 2

    resumed = _config(tmp_path / "resumed", "uniform", max_seeds=4)
    generate_dataset(resumed, quickstart_seeds)
    generate_dataset(_config(tmp_path / "resumed", "uniform"), quickstart_seeds)
    key = lambda row: (row["seed_index"], row["instruction"])  # noqa: E731
    assert sorted(_rows(resumed.output_dir), key=key) == sorted(rows, key=key)


def _die_at_the_third_commit(monkeypatch, where: str) -> None:
    """
    Kills the run (as kill -9 would: nothing more is written) at its third commit, before the shard is renamed or
    between the rename and the progress line.
    """
    killed, commits = [], []
    flush, append_progress = ShardWriter.flush, ShardWriter._append_progress

    def dying_flush(self):
        if killed or (where == "before the commit" and len(commits) == 2 and (self._rows or self._finished_seeds)):
            killed.append(True)
            raise SimulatedKill
        flush(self)

    def dying_append_progress(self, *args):
        commits.append(args)
        if where == "between the shard and its progress line" and len(commits) == 3:
            killed.append(True)
            raise SimulatedKill
        append_progress(self, *args)

    monkeypatch.setattr(ShardWriter, "flush", dying_flush)
    monkeypatch.setattr(ShardWriter, "_append_progress", dying_append_progress)


@pytest.mark.parametrize("where", ["before the commit", "between the shard and its progress line"])
def test_a_killed_bandit_run_resumes_to_the_rows_of_an_uninterrupted_one(
    quickstart_seeds, tmp_path, monkeypatch, where
):
    # The bandit's choices depend on every verdict before them: the rerun must go on from what it had learned on the
    # seeds done, not from nothing
    overrides = {"max_seeds": 40, "shard_size": 4}
    whole = _config(tmp_path / "whole", "bandit", **overrides)
    generate_dataset(whole, quickstart_seeds)
    rows = _rows(whole.output_dir)

    killed = _config(tmp_path / "killed", "bandit", **overrides)
    with monkeypatch.context() as patch:
        _die_at_the_third_commit(patch, where)
        with pytest.raises(SimulatedKill):
            generate_dataset(killed, quickstart_seeds)
    assert 0 < len(_rows(killed.output_dir)) < len(rows)
    summary = generate_dataset(killed, quickstart_seeds)
    assert summary.num_skipped_seeds > 0
    key = lambda row: (row["seed_index"], row["instruction"])  # noqa: E731
    assert sorted(_rows(killed.output_dir), key=key) == sorted(rows, key=key)


def test_no_repeat_baseline_never_repeats_an_operation(quickstart_seeds, tmp_path):
    config = _config(tmp_path, "no_repeat", max_operations=8)  # room past the 6 operations: it stops by itself
    generate_dataset(config, quickstart_seeds)
    rows = _rows(config.output_dir)
    assert rows
    names = set(build_operation_library().names)
    for row in rows:
        assert set(row["operations"]) <= names
        assert len(set(row["operations"])) == len(row["operations"]) == row["depth"] <= len(names)
        assert 1 <= row["evolutions"] <= row["depth"]
    assert len({tuple(row["operations"]) for row in rows}) > 2  # random, not one fixed order


def _card_outline(card: str) -> list[str]:
    """The card's statistics labels and section headings, without their values."""
    body = card[card.index("## Statistics") : card.index("## Columns")]
    return [line.split(":")[0] for line in body.splitlines() if line.startswith(("- ", "#"))]


def test_baselines_write_the_same_card_statistics(tmp_path):
    # `generate --policy <baseline>` runs the stage a trained policy runs, and writes the same card
    outlines = {}
    for policy in ("uniform", "no_repeat", "sequence:add_constraints,deepening"):
        # A recipe of the trained policy, with the baseline on the command line: the card must not name that policy
        config = _config(tmp_path / policy.replace(":", "-"), policy, hub_policy_id="someone/trained-policy")
        run_generate(config)
        statistics = dataset_statistics(config.output_dir)
        card = (tmp_path / policy.replace(":", "-") / "dataset" / "README.md").read_text()
        assert statistics["num_rows"] > 0
        assert sum(row["count"] for row in statistics["evolutions_histogram"]) == statistics["num_rows"]
        assert f"- Distinct operation sequences: {statistics['num_operation_sequences']}\n" in card
        assert f"- Operation policy: {describe_policy(policy)}" in card
        assert "someone/trained-policy" not in card
        outlines[policy] = _card_outline(card)
    assert outlines["uniform"] == outlines["no_repeat"] == outlines["sequence:add_constraints,deepening"]
    for label in ("- Rows", "- Distinct operation sequences", "- LLM queries", "### Evolutions", "### Depth"):
        assert any(line.startswith(label) for line in outlines["uniform"]), label


def test_instructor_candidates_carry_evolutions_and_review_probability(monkeypatch):
    import torch

    from instrl_trl.backends import RulesReviewer, RulesRewriter
    from instrl_trl.backends.accounting import QueryAccounting
    from instrl_trl.environment import Evolution
    from instrl_trl.generation import policies
    from instrl_trl.generation.policies import EvolutionSetup
    from instrl_trl.policies.instructor import InstructorEpisode
    from instrl_trl.rewards import information_gain_reward

    # The instructor's episodes as its environment records them: no model needed to check how they become candidates
    accepted = [
        Evolution("Name rivers in depth.", ("deepening",), 1, (), 0.9),
        Evolution("Name Spanish rivers in depth.", ("deepening", "breadth", "concretizing"), 2, (), 0.7),
    ]
    episodes = [
        InstructorEpisode("Name rivers.", accepted[-1].instruction, accepted[-1].operations, accepted, True, [],
                          returns_at_acceptance=[1.0, 1.5]),
        InstructorEpisode("Plan a trip.", "Plan a trip.", ("deepening",), [], False, [], failed_queries=1),
    ]  # fmt: skip
    monkeypatch.setattr(policies, "choose_operations_with_instructor", lambda *args, **kwargs: episodes)
    policy = InstructorPolicy(None, None, build_operation_library())

    def evolve(keep_intermediate):
        setup = EvolutionSetup(RulesRewriter(), RulesReviewer(), QueryAccounting(), [information_gain_reward],
                               torch.tensor([1.0]), 6, 0, keep_intermediate=keep_intermediate)  # fmt: skip
        return policy.evolve(setup, ["Name rivers.", "Plan a trip."], [7, 8])

    batch = evolve(keep_intermediate=True)
    assert [(c.seed_index, c.depth, c.evolutions, c.reward, c.review_probability) for c in batch.candidates] == [
        (7, 1, 1, 1.0, 0.9),
        (7, 3, 2, 1.5, 0.7),
    ]
    assert batch.failed_seed_indices == {8}
    assert [c.instruction for c in evolve(keep_intermediate=False).candidates] == ["Name Spanish rivers in depth."]
