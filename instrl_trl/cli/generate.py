"""Build the instruction dataset with a trained policy (evolve, answer, verify, shard, card, push)."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..generation import DatasetGenerationConfig

    if subparsers is not None:
        return subparsers.add_parser("generate", help=__doc__, dataclass_types=(DatasetGenerationConfig,))
    return TrlParser((DatasetGenerationConfig,), prog=prog)


def main(config) -> str:
    """Generates (or resumes), writes the card on the main process, and pushes when asked; returns `output_dir`."""
    from ..generation import run_generate

    run_generate(config)
    return config.output_dir
