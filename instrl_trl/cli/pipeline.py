"""Run every stage from one recipe: train-policy -> generate -> sft -> evaluate, all under one output_dir."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..stages.pipeline import PipelineConfig

    if subparsers is not None:
        return subparsers.add_parser("pipeline", help=__doc__, dataclass_types=(PipelineConfig,))
    return TrlParser((PipelineConfig,), prog=prog)


def main(config) -> str:
    """Runs [`~instrl_trl.stages.pipeline.run_pipeline`], each stage as its command runs it; returns `output_dir`."""
    from ..stages.pipeline import run_pipeline
    from .main import run_stage

    return run_pipeline(config, run_stage)
