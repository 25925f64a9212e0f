import pytest
from datasets import Dataset
from transformers import HfArgumentParser

from instrl_trl.backends.role_arguments import RoleArguments
from instrl_trl.data.seeds import SeedColumnArguments
from instrl_trl.generation import DatasetGenerationConfig
from instrl_trl.rewards.reward_arguments import RewardArguments, StepRewardArguments
from instrl_trl.trainer import InstructionGenerationConfig
from instrl_trl.trainer.training_defaults import OperationTrainingDefaults
from tests.config_docs import assert_config_documented


def make_config(tmp_path, **kwargs):
    kwargs.setdefault("policy", "someone/teams-rl-policy")
    kwargs.setdefault("output_dir", str(tmp_path / "run"))
    return DatasetGenerationConfig(**kwargs)


def test_config_is_documented():
    assert_config_documented(DatasetGenerationConfig)


@pytest.mark.parametrize(
    "cls", [RoleArguments, StepRewardArguments, RewardArguments, SeedColumnArguments, OperationTrainingDefaults]
)
def test_shared_arguments_are_documented(cls):
    assert_config_documented(cls)


def test_shared_fields_are_declared_once_with_one_default():
    # the generate and train-policy configs inherit the seeds, roles and rewards rather than declaring them again
    for name in (
        "dataset_name",
        "dataset_split",
        "instruction_column",
        "rewriter",
        "reviewer",
        "response_cache",
        "embedding_model",
    ):
        for cls in (DatasetGenerationConfig, InstructionGenerationConfig):
            assert name not in vars(cls).get("__annotations__", {}), (cls.__name__, name)
    assert "reward_weights" not in vars(InstructionGenerationConfig)["__annotations__"]


def test_embedding_model_reaches_the_rewards(tiny_policy, tmp_path, monkeypatch):
    from instrl_trl.generation import builder

    seen = {}

    def spy(names, embedding_model=None):
        seen["embedding_model"] = embedding_model
        raise RuntimeError("stop after the rewards are built")

    monkeypatch.setattr(builder, "get_reward_funcs", spy)
    config = make_config(tmp_path, policy=tiny_policy, embedding_model="some/embedder", reward_funcs=["novelty"])
    with pytest.raises(RuntimeError, match="stop after"):
        builder.generate_dataset(config, Dataset.from_dict({"instruction": ["Name a river."]}))
    assert seen == {"embedding_model": "some/embedder"}


def test_defaults(tmp_path):
    config = make_config(tmp_path)
    assert (config.dedup_method, config.dedup_threshold) == ("minhash", 0.8)
    assert make_config(tmp_path, dedup_method="embedding").dedup_threshold == 0.95
    assert config.shard_size == 1000
    assert config.verification_retries == 1
    assert config.keep_unverified is False
    assert config.reward_funcs == ["information_gain", "elimination", "query_cost"]
    # every role defaults to the offline rules engine
    assert (config.rewriter, config.reviewer, config.expert) == ({"backend": "rules"},) * 3


@pytest.mark.parametrize("missing", ["policy", "output_dir"])
def test_required_fields(tmp_path, missing):
    with pytest.raises(ValueError, match=rf"`{missing}` is required"):
        make_config(tmp_path, **{missing: None})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dedup_threshold", 0.0),
        ("dedup_threshold", 1.5),
        ("dedup_method", "rouge"),
        ("shard_size", 0),
        ("batch_size", 0),
        ("max_operations", 0),
        ("temperature", 0.0),
        ("verification_retries", -1),
        ("max_seeds", 0),
    ],
)
def test_out_of_range_values(tmp_path, field, value):
    with pytest.raises(ValueError, match=rf"`{field}` must be .*got {value!r}"):
        make_config(tmp_path, **{field: value})


def test_dedup_threshold_one_is_allowed(tmp_path):
    assert make_config(tmp_path, dedup_threshold=1.0).dedup_threshold == 1.0


def test_reward_weights_must_match_reward_funcs(tmp_path):
    with pytest.raises(ValueError, match=r"`reward_weights` has 2 values but `reward_funcs` has 3"):
        make_config(tmp_path, reward_weights=[1.0, 0.5])
    config = make_config(tmp_path, reward_funcs=["information_gain"], reward_weights=[2.0])
    assert config.reward_weights == [2.0]


def test_push_to_hub_needs_a_dataset_id(tmp_path):
    with pytest.raises(ValueError, match=r"`push_to_hub` needs `hub_dataset_id`"):
        make_config(tmp_path, push_to_hub=True)
    assert make_config(tmp_path, push_to_hub=True, hub_dataset_id="someone/data").push_to_hub


@pytest.mark.parametrize("key", ["token", "api_key"])
def test_a_token_in_a_role_spec_is_refused(tmp_path, key):
    spec = {"backend": "endpoint", "model": "m", key: "hf_secret_value"}
    with pytest.raises(ValueError, match=rf"`expert\.{key}`: tokens never go in a recipe") as info:
        make_config(tmp_path, expert=spec)
    assert "hf_secret_value" not in str(info.value)


def test_role_specs_are_parsed(tmp_path):
    config = make_config(tmp_path, expert='{"backend": "endpoint", "model": "m"}', reviewer="rules")
    assert config.expert == {"backend": "endpoint", "model": "m"}
    assert config.reviewer == {"backend": "rules"}
    with pytest.raises(ValueError, match=r"`rewriter\.backend` is 'nope'"):
        make_config(tmp_path, rewriter={"backend": "nope"})


def test_command_line(tmp_path):
    [config] = HfArgumentParser([DatasetGenerationConfig]).parse_args_into_dataclasses(
        [
            "--policy",
            "someone/policy",
            "--output_dir",
            str(tmp_path),
            "--dedup_threshold",
            "0.9",
            "--expert",
            '{"backend": "endpoint", "model": "m"}',
            "--keep_unverified",
            "true",
        ]
    )
    assert config.dedup_threshold == 0.9
    assert config.expert == {"backend": "endpoint", "model": "m"}
    assert config.keep_unverified is True
