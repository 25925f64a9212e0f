"""Train the operation policy with PPO (InstructionGenerationTrainer)."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..stages.train_policy import PolicyScriptArguments
    from ..trainer import InstructionGenerationConfig

    dataclass_types = (PolicyScriptArguments, InstructionGenerationConfig)
    if subparsers is not None:
        return subparsers.add_parser("train-policy", help=__doc__, dataclass_types=dataclass_types)
    return TrlParser(dataclass_types, prog=prog)


def main(script_args, training_args) -> str:
    """Trains, saves and optionally pushes the policy; returns the folder it was saved to."""
    from ..stages.train_policy import run_train_policy

    run_train_policy(script_args, training_args)
    return training_args.output_dir
