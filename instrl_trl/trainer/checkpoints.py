"""Which checkpoint a rerun resumes from: one rule for the policy and SFT stages."""

import os
from collections.abc import Callable

from transformers.trainer_utils import get_last_checkpoint


def find_resume_checkpoint(
    output_dir: str, resume_from_checkpoint: str | bool | None = None, log: Callable[[str], None] | None = None
) -> str | bool | None:
    """
    `resume_from_checkpoint` when set; otherwise the last `checkpoint-*` folder in `output_dir`, so that rerunning a
    killed stage resumes it (said through `log`); otherwise `None` (train from scratch).
    """
    if resume_from_checkpoint is not None:
        return resume_from_checkpoint
    if not os.path.isdir(output_dir):
        return None
    checkpoint = get_last_checkpoint(output_dir)
    if checkpoint is not None and log is not None:
        log(f"Resuming from the last checkpoint in {output_dir}: {checkpoint}")
    return checkpoint
