import dataclasses
import warnings

import pytest
from trl.trainer.base_config import _BaseConfig

from instrl_trl.backends.role_arguments import RoleArguments
from instrl_trl.data.seeds import SeedColumnArguments
from instrl_trl.operations.operation_arguments import OperationArguments
from instrl_trl.rewards.reward_arguments import RewardArguments
from instrl_trl.trainer import InstructionGenerationConfig
from instrl_trl.trainer.training_defaults import OperationTrainingDefaults
from tests.config_docs import assert_config_documented, declared_fields, overridden_field_names


def make_config(tmp_path, **kwargs):
    kwargs.setdefault("use_cpu", True)
    kwargs.setdefault("report_to", "none")
    return InstructionGenerationConfig(output_dir=str(tmp_path), **kwargs)


def test_config_is_documented():
    assert_config_documented(InstructionGenerationConfig)


def test_declared_fields_are_the_new_and_the_overridden_ones():
    base = {field.name for field in dataclasses.fields(_BaseConfig)}
    # the seed column, operations, roles and rewards are argument groups shared with the instructor and generate
    shared = {
        field.name
        for cls in (OperationTrainingDefaults, SeedColumnArguments, OperationArguments, RoleArguments, RewardArguments)
        for field in dataclasses.fields(cls)
    }
    declared = {field.name for field in declared_fields(InstructionGenerationConfig)}
    new = {field.name for field in dataclasses.fields(InstructionGenerationConfig)} - base - shared
    assert new <= declared
    assert declared - new == overridden_field_names(InstructionGenerationConfig)
    assert {"remove_unused_columns", "ddp_find_unused_parameters"} <= declared - new
    # the defaults both trainers change come from their one group, and win over TrainingArguments'
    defaults = InstructionGenerationConfig("unused")
    assert (defaults.gradient_checkpointing, defaults.dataloader_pin_memory) == (False, False)  # TRL: True, True
    assert {"gamma", "gae_lambda", "query_budget"} <= new
    assert {"reward_funcs", "rewriter", "instruction_column", "max_operations"} <= shared - declared


def test_assert_config_documented_finds_gaps():
    @dataclasses.dataclass
    class Undocumented:
        """
        Parameters:
            alpha (`int`):
                Documented.
        """

        alpha: int = dataclasses.field(default=1, metadata={"help": "Documented."})
        beta: int = dataclasses.field(default=2, metadata={"help": "100% sure."})
        gamma: int = 3

    with pytest.raises(AssertionError) as error:
        assert_config_documented(Undocumented)
    message = str(error.value)
    assert "`alpha`" not in message
    assert "`beta`'s help has an unescaped `%`" in message
    assert "`beta` is not in the docstring" in message
    assert "`gamma` has no `help`" in message


def test_defaults(tmp_path):
    config = make_config(tmp_path)
    assert config.max_operations == 6
    assert config.gamma == 0.995
    assert config.gae_lambda == 0.97
    assert config.reward_funcs == ["information_gain", "elimination", "novelty", "query_cost"]
    assert config.remove_unused_columns is False
    assert config.dataloader_pin_memory is False
    assert not config.gradient_checkpointing


def test_bf16_is_off_on_cpu(tmp_path):
    assert make_config(tmp_path).bf16 is False


def test_no_gradient_checkpointing_future_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        make_config(tmp_path)


@pytest.mark.parametrize(
    "kwargs, field_name",
    [
        ({"max_operations": 0}, "max_operations"),
        ({"query_budget": 0}, "query_budget"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"gae_lambda": -0.1}, "gae_lambda"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"num_iterations": 0}, "num_iterations"),
        ({"cost_target": 0.0}, "cost_target"),
        ({"reward_funcs": []}, "reward_funcs"),
        ({"max_state_length": 4}, "max_state_length"),
        ({"rollout_temperature": 0.0}, "rollout_temperature"),
        ({"epsilon_high": 0.0}, "epsilon_high"),
        ({"vf_coef": -0.5}, "vf_coef"),
        ({"entropy_coef": -0.01}, "entropy_coef"),
        ({"beta": -0.1}, "beta"),
        ({"cost_multiplier_lr": 0.0}, "cost_multiplier_lr"),
        ({"steps_per_generation": 0}, "steps_per_generation"),
        ({"eval_strategy": "steps", "eval_steps": 5}, "eval_strategy"),
        ({"reward_weights": [1.0, 2.0]}, "reward_weights"),
        ({"per_device_train_batch_size": 4, "generation_batch_size": 6}, "generation_batch_size"),
        ({"generation_batch_size": 8, "steps_per_generation": 2}, "generation_batch_size"),
    ],
)
def test_invalid_values_raise(tmp_path, kwargs, field_name):
    with pytest.raises(ValueError, match=f"`{field_name}`"):
        make_config(tmp_path, **kwargs)


def test_generation_batch_size_is_derived_from_steps_per_generation(tmp_path):
    config = make_config(tmp_path, per_device_train_batch_size=2, steps_per_generation=3)
    assert config.generation_batch_size == 6
    assert config.steps_per_generation == 3


def test_steps_per_generation_defaults_to_gradient_accumulation_steps(tmp_path):
    config = make_config(tmp_path, per_device_train_batch_size=2, gradient_accumulation_steps=4)
    assert config.steps_per_generation == 4
    assert config.generation_batch_size == 8


def test_steps_per_generation_is_derived_from_generation_batch_size(tmp_path):
    config = make_config(tmp_path, per_device_train_batch_size=2, generation_batch_size=8)
    assert config.steps_per_generation == 4
    assert config.generation_batch_size == 8


def test_reward_weights_of_the_right_length_are_accepted(tmp_path):
    config = make_config(tmp_path, reward_funcs=["information_gain", "query_cost"], reward_weights=[1.0, 0.5])
    assert config.reward_weights == [1.0, 0.5]
