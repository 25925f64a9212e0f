"""Evaluate models on IFEval (or any IFEval-schema benchmark): scores, per-prompt verdicts, model cards, comparison."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..evaluation.evaluation_config import BenchmarkEvaluationConfig

    if subparsers is not None:
        return subparsers.add_parser("evaluate", help=__doc__, dataclass_types=(BenchmarkEvaluationConfig,))
    return TrlParser((BenchmarkEvaluationConfig,), prog=prog)


def main(config) -> dict[str, dict]:
    """Evaluates every model, prints the comparison table and where the results went; returns the results."""
    import os

    from ..evaluation.runner import COMPARISON_PLOT_FILE, evaluate_models, format_comparison_table

    results = evaluate_models(config)
    print(format_comparison_table(results))  # noqa: T201
    for scores in results.values():
        if scores["num_skipped"]:
            keys = ", ".join(str(row["key"]) for row in scores["skipped"])
            print(f"{scores['model']}: {scores['num_skipped']} rows skipped (keys: {keys}).")  # noqa: T201
    print(f"Results written to {os.path.abspath(config.output_dir)}")  # noqa: T201
    if len(results) > 1:
        print(f"Comparison chart: {os.path.join(os.path.abspath(config.output_dir), COMPARISON_PLOT_FILE)}")  # noqa: T201
    if config.push_to_hub:
        print(f"Model card pushed to {config.hub_model_id}")  # noqa: T201
    return results
