"""
Is a benchmark in- or out-of-distribution for the model? Its constraint ids are compared with those of the model's
training data, read from `train_dataset` or from the model's card (the SFT card records them), and the verdict goes
into `eval_results.json`, the card and the summary, with a loud warning when the training data carries a benchmark's
test constraints.
"""

import logging
import os
from typing import Any

from huggingface_hub import ModelCard

from ..constraints.split import compare_constraint_ids
from ..data.training_constraints import constraints_from_card_data, read_training_constraints
from .evaluation_config import BenchmarkEvaluationConfig


logger = logging.getLogger(__name__)


def training_constraints_of(model: str, config: BenchmarkEvaluationConfig) -> dict[str, Any]:
    r"""
    The training data's constraint ids for `model`: `{"source": ..., "constraint_ids": {id: rows} or None}`, from
    `config.train_dataset` when set (`source` is `"train_dataset"`, and `train_dataset` names it), else from the
    model's card (a local folder's `README.md`, or the Hub's; `source` is `"the model's card"`).
    """
    if config.train_dataset:
        recorded = read_training_constraints(config.train_dataset)
        return {"source": "train_dataset", "train_dataset": config.train_dataset, "constraint_ids": _ids(recorded)}
    try:
        card = ModelCard.load(os.path.join(model, "README.md") if os.path.isdir(model) else model)
    except Exception as error:  # noqa: BLE001 - no card (or no Hub) only leaves the comparison unknown
        logger.info(f"No card for {model} ({type(error).__name__}): its training constraints are not known.")
        return {"source": None, "constraint_ids": None}
    recorded = constraints_from_card_data(card.data.to_dict())
    return {"source": "the model's card" if recorded else None, "constraint_ids": _ids(recorded)}


def _ids(recorded: dict | None) -> dict[str, int] | None:
    return None if recorded is None else recorded["constraint_ids"]


def annotate_distribution(results: dict[str, Any], benchmark_ids: dict[str, set[str]], training: dict) -> None:
    r"""
    Writes into one model's `results` (its `eval_results.json` content) the training data's constraint ids
    (`training_constraints`) and, under each benchmark, `distribution`: `relation`, `shared_ids` and `summary` (see
    [`~instrl_trl.constraints.split.compare_constraint_ids`]). Logs a warning for each overlapping benchmark.

    Args:
        results (`dict`):
            The model's results, changed in place.
        benchmark_ids (`dict[str, set[str]]`):
            Benchmark name -> the constraint ids of its evaluated rows.
        training (`dict`):
            The model's [`training_constraints_of`].
    """
    results["training_constraints"] = training
    ids = training["constraint_ids"]
    for name, ids_of_benchmark in benchmark_ids.items():
        distribution = compare_constraint_ids(ids_of_benchmark, None if ids is None else list(ids))
        results["benchmarks"][name]["distribution"] = distribution
        if distribution["relation"] == "overlapping":
            logger.warning(overlap_warning(results["model"], name, distribution))


def overlap_warning(model: str, benchmark: str, distribution: dict) -> str:
    """The loud message for a benchmark whose test constraints the training data carries."""
    return (
        f"BENCHMARK CONTAMINATION: {benchmark} is not out-of-distribution for {model}: the training data carries its "
        f"test constraint ids {', '.join(distribution['shared_ids'])}. Report these scores as in-distribution, or "
        "train on data without those constraints (IFBench's test constraints are refused by `constraint_families`)."
    )


def distribution_lines(results: dict[str, Any]) -> list[str]:
    """One line per benchmark, `"- NAME: summary"`, for the card and the terminal summary."""
    lines = []
    for name, scores in results.get("benchmarks", {}).items():
        distribution = scores.get("distribution")
        if distribution is not None:
            lines.append(f"- {name}: {distribution['summary']}")
    return lines
