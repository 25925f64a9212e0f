"""Train an LLM instructor with GRPO: it evolves instructions by calling one tool per operation."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..trainer.instructor import InstructorConfig

    if subparsers is not None:
        return subparsers.add_parser("train-instructor", help=__doc__, dataclass_types=(InstructorConfig,))
    return TrlParser((InstructorConfig,), prog=prog)


def main(config) -> str:
    """Trains, saves and optionally pushes the instructor; returns the folder it was saved to."""
    import os

    from accelerate import PartialState

    from ..trainer.instructor import run_train_instructor

    output_dir = run_train_instructor(config)
    if PartialState().is_main_process:
        print(f"Instructor saved to {os.path.abspath(output_dir)}")  # noqa: T201
    return output_dir
