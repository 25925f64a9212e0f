"""Train an LLM instructor with GRPO: it evolves instructions by calling one tool per operation."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..stages.train_instructor import InstructorScriptArguments
    from ..trainer.instructor import InstructorConfig

    dataclass_types = (InstructorConfig, InstructorScriptArguments)
    if subparsers is not None:
        return subparsers.add_parser("train-instructor", help=__doc__, dataclass_types=dataclass_types)
    return TrlParser(dataclass_types, prog=prog)


def main(config, script_args=None) -> str:
    """Trains, saves and optionally pushes the instructor; returns the folder it was saved to."""
    import os

    from accelerate import PartialState

    from ..stages.train_instructor import run_train_instructor

    output_dir = run_train_instructor(config, script_args)
    if PartialState().is_main_process:
        print(f"Instructor saved to {os.path.abspath(output_dir)}")  # noqa: T201
    return output_dir
