"""`train-policy` on a failing rewriter stops, and never saves a run of mostly failed queries as a success."""

import os
import re

import pytest

from instrl_trl.backends.failure_budget import RoleFailureError
from instrl_trl.runs.folder import RunFingerprintError
from instrl_trl.stages.train_policy import PolicyScriptArguments, run_train_policy
from instrl_trl.trainer import InstructionGenerationConfig
from tests.backends.openai_server import OpenAIServer


def make_config(output_dir, **overrides) -> InstructionGenerationConfig:
    kwargs = {
        "output_dir": str(output_dir), "per_device_train_batch_size": 8, "steps_per_generation": 2,
        "num_iterations": 1, "max_steps": 4, "save_strategy": "no", "report_to": "none", "disable_tqdm": True,
        "reward_funcs": ["information_gain", "elimination", "query_cost"], "reward_weights": [1.0, 1.0, 0.25],
        "max_state_length": 64, "seed": 7,
    }  # fmt: skip
    kwargs.update(overrides)
    return InstructionGenerationConfig(**kwargs)


def endpoint(server: OpenAIServer) -> dict:
    return {"backend": "endpoint", "model": "m", "base_url": server.base_url, "max_retries": 0, "timeout": 10}


def test_an_unreachable_rewriter_stops_training_and_saves_no_policy(tiny_backbone, tmp_path):
    with OpenAIServer(faults=["500"] * 1000) as server:
        config = make_config(tmp_path / "policy", rewriter=endpoint(server))
        base_url = server.base_url
        with pytest.raises(RoleFailureError) as info:
            run_train_policy(PolicyScriptArguments(model_name_or_path=tiny_backbone), config)
    message = str(info.value)
    assert re.search(r"Training stopped at step 1: The rewriter failed (\d+) of its \1 queries", message)
    assert base_url in message and "last error: status 500" in message
    assert "run the same command again" in message
    assert not os.path.exists(tmp_path / "policy" / "model.safetensors")
    assert not os.path.exists(tmp_path / "policy" / "_run.lock")  # released on the error


def test_a_run_of_mostly_failed_queries_is_not_saved(tiny_backbone, tmp_path):
    # Two queries of three fail: under the default budget (a whole batch) training goes on, but the policy learnt
    # from failures and is not saved as a finished run
    with OpenAIServer(faults=["500", "500", "ok"] * 1000) as server:
        config = make_config(tmp_path / "policy", rewriter=endpoint(server), max_steps=2)
        with pytest.raises(RuntimeError, match=r"The rewriter failed \d+ of its \d+ queries during training"):
            run_train_policy(PolicyScriptArguments(model_name_or_path=tiny_backbone), config)
    assert not os.path.exists(tmp_path / "policy" / "model.safetensors")


def test_another_learning_rate_or_seed_is_refused(tiny_backbone, tmp_path):
    script_args = PolicyScriptArguments(model_name_or_path=tiny_backbone)
    run_train_policy(script_args, make_config(tmp_path / "policy", max_steps=2))
    with pytest.raises(RunFingerprintError, match="`learning_rate`.*`seed`") as info:
        run_train_policy(script_args, make_config(tmp_path / "policy", max_steps=2, learning_rate=1e-3, seed=8))
    assert "`model`" not in str(info.value)
    with pytest.raises(ValueError, match="`max_steps` is 0"):
        run_train_policy(script_args, make_config(tmp_path / "other", max_steps=0))
