import json

from instrl_trl.runs.checkpoints import find_resume_checkpoint, is_complete_checkpoint


def _checkpoint(folder, step, complete=True):
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    if complete:
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return str(checkpoint)


def test_a_rerun_resumes_from_the_last_checkpoint_unless_one_is_given(tmp_path):
    said = []
    assert find_resume_checkpoint(str(tmp_path / "absent")) is None
    assert find_resume_checkpoint(str(tmp_path), None, said.append) is None
    _checkpoint(tmp_path, 2)
    last = _checkpoint(tmp_path, 10)
    assert find_resume_checkpoint(str(tmp_path), None, said.append) == last
    assert said == [f"Resuming from the last checkpoint in {tmp_path}: {last}"]
    given = str(tmp_path / "checkpoint-2")
    assert find_resume_checkpoint(str(tmp_path), given, said.append) == given
    assert len(said) == 1  # a checkpoint given explicitly is not announced as found


def test_incomplete_checkpoints_are_skipped_with_a_warning_and_set_aside(tmp_path):
    complete = _checkpoint(tmp_path, 4)
    _checkpoint(tmp_path, 8, complete=False)  # killed while saving: only config.json
    torn = _checkpoint(tmp_path, 12, complete=False)
    (tmp_path / "checkpoint-12" / "trainer_state.json").write_text('{"global_st')  # killed while writing it
    assert not is_complete_checkpoint(torn) and is_complete_checkpoint(complete)

    warnings = []
    assert find_resume_checkpoint(str(tmp_path), None, warn=warnings.append) == complete
    assert len(warnings) == 2 and "checkpoint-12" in warnings[0] and "checkpoint-8" in warnings[1]
    assert "incomplete" in warnings[0]
    # Set aside, so that neither a later resume nor the Trainer's rotation takes them for the newest checkpoints
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "checkpoint-4",
        "incomplete-checkpoint-12",
        "incomplete-checkpoint-8",
    ]
    assert find_resume_checkpoint(str(tmp_path), None, warn=warnings.append) == complete and len(warnings) == 2


def test_only_incomplete_checkpoints_train_from_scratch(tmp_path):
    _checkpoint(tmp_path, 3, complete=False)
    warnings = []
    assert find_resume_checkpoint(str(tmp_path), None, warn=warnings.append) is None
    assert len(warnings) == 1
