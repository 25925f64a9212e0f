from dataclasses import fields
from pathlib import Path

import pytest

from instrl_trl.cli.train_instructor import make_parser
from instrl_trl.trainer.instructor import InstructorConfig
from tests.config_docs import assert_config_documented


REPO_ROOT = Path(__file__).resolve().parents[3]
RECIPES = [
    "recipes/quickstart/instructor.yaml",
    "recipes/smollm2-135m-instruct/instructor.yaml",
    "recipes/qwen2.5-1.5b-instruct/instructor.yaml",
]


def test_every_field_is_documented():
    assert_config_documented(InstructorConfig)


def test_cpu_safe_defaults(tmp_path):
    config = InstructorConfig(output_dir=str(tmp_path), use_cpu=True)
    assert config.bf16 is False
    assert not config.gradient_checkpointing
    assert config.max_tool_calling_iterations == config.max_operations + 1 == 7
    assert InstructorConfig(output_dir=str(tmp_path), use_cpu=True, max_operations=3).max_tool_calling_iterations == 4


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reward_weights": [1.0]}, "operation_reward_weights"),
        ({"operation_reward_weights": [1.0]}, "operation_reward_weights"),
        ({"reward_funcs": ["information_gain", "typo"]}, "reward_funcs"),
        ({"reward_funcs": []}, "reward_funcs"),
        ({"max_operations": 0}, "max_operations"),
        ({"warm_start_steps": -1}, "warm_start_steps"),
        ({"chat_template_path": "no/such/template.jinja"}, "chat_template_path"),
        ({"task_prompt": " "}, "task_prompt"),
        ({"rewriter": {"backend": "typo"}}, "rewriter.backend"),
    ],
)
def test_bad_values_fail_naming_the_field(tmp_path, kwargs, field):
    with pytest.raises(ValueError, match=field):
        InstructorConfig(output_dir=str(tmp_path), use_cpu=True, **kwargs)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_parse_strictly(recipe, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    config, _ = make_parser(prog="instrl-trl train-instructor").parse_args_and_config(["--config", recipe])
    assert config.output_dir.startswith("data/") and config.hub_model_id
    assert len(config.operation_reward_weights) == len(config.reward_funcs)


def test_unknown_keys_fail(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    with pytest.raises((SystemExit, ValueError)):
        make_parser().parse_args_and_config(["--config", RECIPES[0], "--max_stepz", "2"])


def test_the_argument_groups_are_the_ppo_trainers():
    # Issue 22: the instructor's config is built from the PPO trainer's argument groups; it declares only its own
    from instrl_trl import InstructionGenerationConfig
    from instrl_trl.backends.role_arguments import RoleArguments
    from instrl_trl.data.seeds import SeedColumnArguments
    from instrl_trl.operations.operation_arguments import OperationArguments

    for group in (SeedColumnArguments, OperationArguments, RoleArguments):
        assert issubclass(InstructorConfig, group) and issubclass(InstructionGenerationConfig, group)
    own = set(vars(InstructorConfig).get("__annotations__", {}))
    shared = {
        field.name for group in (SeedColumnArguments, OperationArguments, RoleArguments) for field in fields(group)
    }
    assert not own & shared
