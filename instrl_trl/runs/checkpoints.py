"""Which checkpoint a rerun resumes from: one rule for the policy and SFT stages."""

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable

import torch
from transformers import TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR


# The Trainer writes `trainer_state.json` last in `_save_checkpoint`, after the model, optimizer, scheduler and RNG
# states: a checkpoint whose state file reads back is complete. A process killed while saving leaves a folder
# without it (often only `config.json`), which `Trainer.train(resume_from_checkpoint=...)` cannot load.
STATE_FILE = "trainer_state.json"
INCOMPLETE_PREFIX = "incomplete-"
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def save_resumable_state(state: dict, checkpoint_dir: str, filename: str) -> None:
    """
    Writes a trainer's own resumable state (`state`, read back by `torch.load`) into `checkpoint_dir` atomically.
    Trainers call it *before* the Trainer's `_save_checkpoint`, so that `trainer_state.json`, written last, still
    marks a complete checkpoint: written after it, a kill mid-write left a checkpoint that every rerun picked and
    failed to read (`EOFError`), with the older checkpoints already rotated away.
    """
    os.makedirs(checkpoint_dir, exist_ok=True)
    path = os.path.join(checkpoint_dir, filename)
    temporary = f"{path}.tmp"
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_resumable_state(checkpoint_dir: str, filename: str) -> dict | None:
    """What [`save_resumable_state`] wrote to `checkpoint_dir`, or `None` when the checkpoint has no such file."""
    path = os.path.join(checkpoint_dir, filename)
    if not os.path.isfile(path):
        return None
    return torch.load(path, weights_only=False)


def is_complete_checkpoint(checkpoint: str) -> bool:
    """Whether `checkpoint` holds everything the Trainer writes: its `trainer_state.json` exists and parses."""
    try:
        with open(os.path.join(checkpoint, STATE_FILE)) as f:
            json.load(f)
    except (OSError, ValueError):
        return False
    return True


def find_resume_checkpoint(
    output_dir: str,
    resume_from_checkpoint: str | bool | None = None,
    log: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> str | bool | None:
    """
    `resume_from_checkpoint` when set; otherwise the newest *complete* `checkpoint-*` folder in `output_dir`, so
    that rerunning a killed stage resumes it (said through `log`); otherwise `None` (train from scratch).

    A newer checkpoint that is incomplete (the run was killed while saving it) is skipped, said through `warn`, and
    renamed `incomplete-checkpoint-N`: left as it is, the Trainer's rotation (`save_total_limit`) would keep it as
    the newest and delete the complete ones.
    """
    if resume_from_checkpoint is not None:
        return resume_from_checkpoint
    if not os.path.isdir(output_dir):
        return None
    steps = {int(match[1]): name for name in os.listdir(output_dir) if (match := _CHECKPOINT.match(name))}
    for step in sorted(steps, reverse=True):
        checkpoint = os.path.join(output_dir, steps[step])
        if not os.path.isdir(checkpoint):
            continue
        if is_complete_checkpoint(checkpoint):
            if log is not None:
                log(f"Resuming from the last checkpoint in {output_dir}: {checkpoint}")
            return checkpoint
        aside = os.path.join(output_dir, INCOMPLETE_PREFIX + steps[step])
        # Every process of a distributed run comes here: the first one renames, the others find it gone
        with contextlib.suppress(OSError):
            if os.path.isdir(aside):
                shutil.rmtree(aside)  # an older incomplete save of the same step
            os.rename(checkpoint, aside)
        if warn is not None:
            warn(
                f"Skipped the incomplete checkpoint {checkpoint} (no readable {STATE_FILE}: the run was killed while "
                f"saving it); it is kept as {aside}. Resuming from the newest complete checkpoint, if any."
            )
    return None


def check_max_steps(args: TrainingArguments) -> None:
    """
    Raises a `ValueError` for `max_steps=0`, with which the Trainer would still train, before anything is loaded.
    """
    if args.max_steps == 0:
        raise ValueError(
            '`max_steps` is 0, which the Trainer does not read as "train nothing": it would still train. Set a '
            "positive `max_steps`, or -1 to train `num_train_epochs` epochs."
        )
