"""The `train-instructor` stage keeps every stage's rules (issue 22): resume, fingerprint, failure budget."""

import json

import pytest
import torch
from transformers import TrainerState

from instrl_trl.backends.failure_budget import RoleFailureError
from instrl_trl.runs.folder import RunFingerprintError
from instrl_trl.stages.train_instructor import InstructorScriptArguments, run_train_instructor
from instrl_trl.trainer.instructor.instructor_trainer import EXTRA_STATE_FILE
from tests.simulated_kill import SimulatedKill
from tests.trainer.instructor.test_instructor_trainer import make_config


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_kill_during_a_save_resumes_from_the_last_complete_checkpoint(tiny_instructor, tmp_path, silence_trl):
    settings = {"model_name_or_path": tiny_instructor, "save_strategy": "steps", "save_steps": 1, "max_steps": 3}
    run_train_instructor(make_config(tmp_path / "full", **settings))

    # A kill -9 as `checkpoint-2` gets its last file, `trainer_state.json`: model, optimizer and our state are there.
    # Then the same command again, as a user would: it resumes from `checkpoint-1`.
    output_dir = tmp_path / "killed"
    save_to_json = TrainerState.save_to_json

    def die_at_checkpoint_2(self, json_path):
        if "checkpoint-2" in json_path:
            raise SimulatedKill
        save_to_json(self, json_path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrainerState, "save_to_json", die_at_checkpoint_2)
        with pytest.raises(SimulatedKill):
            run_train_instructor(make_config(output_dir, **settings))
    assert (output_dir / "checkpoint-2" / EXTRA_STATE_FILE.format(rank=0)).is_file()
    run_train_instructor(make_config(output_dir, **settings))

    assert (output_dir / "incomplete-checkpoint-2" / "config.json").is_file()
    state = json.loads((output_dir / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    full = json.loads((tmp_path / "full" / "queries.json").read_text())
    resumed = json.loads((output_dir / "queries.json").read_text())
    assert resumed["per_role"]["rewriter"]["queries"] > 0
    assert set(resumed) == set(full)  # the one queries.json format, read by the same reader as every stage's
    # The run redid steps 2 and 3 from checkpoint 1: the weights are those of the uninterrupted run
    from safetensors.torch import load_file

    expected, actual = load_file(tmp_path / "full" / "model.safetensors"), load_file(output_dir / "model.safetensors")
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=1e-5, msg=name)


def test_a_rerun_with_another_recipe_is_refused_naming_the_field(tiny_instructor, tmp_path, silence_trl):
    # The first run dies on a dead rewriter (a closed port) right after claiming the folder: one clear error...
    dead = {"backend": "endpoint", "model": "m", "base_url": "http://127.0.0.1:9/v1", "max_retries": 0, "timeout": 5}
    config = make_config(tmp_path, model_name_or_path=tiny_instructor, rewriter=dead, max_steps=1)
    with pytest.raises(RoleFailureError, match="rewriter failed"):
        run_train_instructor(config)
    assert not (tmp_path / "model.safetensors").exists()
    # ... and its fingerprint stays: the same folder with another learning rate is refused, naming the field
    changed = make_config(tmp_path, model_name_or_path=tiny_instructor, rewriter=dead, max_steps=1, learning_rate=0.5)
    with pytest.raises(RunFingerprintError, match="`learning_rate`"):
        run_train_instructor(changed)
    with pytest.raises(RoleFailureError):  # `overwrite_output_dir` starts afresh (and meets the same dead rewriter)
        run_train_instructor(changed, InstructorScriptArguments(overwrite_output_dir=True))
