"""Evaluate models on IFEval (or another registered benchmark): scores, per-prompt verdicts, cards, comparison."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..evaluation.evaluation_config import BenchmarkEvaluationConfig

    if subparsers is not None:
        return subparsers.add_parser("evaluate", help=__doc__, dataclass_types=(BenchmarkEvaluationConfig,))
    return TrlParser((BenchmarkEvaluationConfig,), prog=prog)


def main(config) -> dict[str, dict]:
    """Runs the `evaluate` stage ([`~instrl_trl.evaluation.run_evaluate`]); returns the results."""
    from ..stages.evaluate import run_evaluate

    return run_evaluate(config)
