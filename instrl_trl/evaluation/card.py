"""The model card side of the `evaluate` stage: scores into a local card's `model-index` and "Evaluation" section."""

import logging
import os
import re
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..metrics.benchmarks import BenchmarkAdapter
from ..runs.atomic import write_text_atomically
from .benchmark_rows import dataset_id
from .distribution import distribution_lines, overlap_warning
from .harness import harness_card_lines


logger = logging.getLogger(__name__)


def to_eval_results(results: dict[str, Any], adapter: BenchmarkAdapter) -> list[EvalResult]:
    r"""
    One benchmark's scores (`adapter.scores`) as [`~huggingface_hub.EvalResult`]s for the card's `model-index`.

    `results` is the benchmark's entry of `eval_results.json` (its scores, `benchmark`, `benchmark_config`,
    `benchmark_split`, `num_samples`, `num_scored`). When rows were skipped, each result's `metric_args` says over how
    many prompts it was computed (`num_scored` of `num_samples`), and the card's table shows it.
    """
    dataset_type = dataset_id(results["benchmark"])
    subset = None
    if results["num_scored"] < results["num_samples"]:
        subset = {"num_scored": results["num_scored"], "num_samples": results["num_samples"]}
    return [
        EvalResult(
            task_type="text-generation",
            task_name="Text Generation",
            dataset_type=dataset_type,
            dataset_name=adapter.dataset_name(dataset_type),
            dataset_config=results["benchmark_config"],
            dataset_split=results["benchmark_split"],
            dataset_args={"num_few_shot": 0},
            metric_type=score,
            metric_name=name,
            metric_value=round(results[score], 4),
            metric_args=subset,
        )
        for score, name in adapter.scores.items()
        if results[score] == results[score]  # NaN when no row could be scored: nothing to report
    ]


def _result_id(result: EvalResult) -> tuple:
    return (result.task_type, result.dataset_type, result.dataset_config, result.dataset_split, result.metric_type)


def merge_eval_results(existing: list[EvalResult] | None, new: list[EvalResult]) -> list[EvalResult]:
    """The card's results with `new` ones replacing those of the same task, dataset, split and metric."""
    replaced = {_result_id(result) for result in new}
    return [result for result in existing or [] if _result_id(result) not in replaced] + list(new)


def results_table(eval_results: list[EvalResult]) -> str:
    """
    The card's "Evaluation" section body: a markdown table, one line per result; a score over a subset of the
    prompts (rows skipped) says so in its line and in a note below the table.
    """
    lines = ["| Benchmark | Metric | Value |", "|---|---|---|"]
    subsets = {}
    for result in eval_results:
        benchmark = result.dataset_name or result.dataset_type
        if result.dataset_split:
            benchmark += f" ({result.dataset_split})"
        value = result.metric_value
        args = result.metric_args or {}
        if "num_scored" in args:
            value = f"{value} (on {args['num_scored']} of {args['num_samples']} prompts)"
            subsets[benchmark] = args
        lines.append(f"| {benchmark} | {result.metric_name or result.metric_type} | {value} |")
    for benchmark, args in subsets.items():
        skipped = args["num_samples"] - args["num_scored"]
        lines.append(
            f"\n{benchmark}: scores over {args['num_scored']} of {args['num_samples']} prompts ({skipped} skipped; "
            "their keys and reasons are under `skipped` in `eval_results.json`)."
        )
    return "\n".join(lines)


def _replace_section(content: str, heading: str, body: str) -> str:
    # The section runs from its `## heading` line to the next heading of level 1 or 2 (or the end)
    pattern = re.compile(rf"^## {re.escape(heading)}[ \t]*\n.*?(?=^#{{1,2}} |\Z)", flags=re.MULTILINE | re.DOTALL)
    section = f"## {heading}\n\n{body}\n\n"
    if pattern.search(content):
        return pattern.sub(lambda _: section, content, count=1)
    return content.rstrip("\n") + f"\n\n{section}"


def update_model_card(
    model_dir: str, eval_results: list[EvalResult], model_name: str | None = None, notes: str | None = None
) -> ModelCard:
    r"""
    Writes `eval_results` into the card of a local model folder, keeping the rest of the card.

    The results replace the card's earlier results of the same benchmark, split and metric in the `model-index`
    metadata, and the body of its "Evaluation" section (which is added when missing). A folder without `README.md`
    gets a minimal card.

    Args:
        model_dir (`str`):
            The model folder.
        eval_results (`list[~huggingface_hub.EvalResult]`):
            The results to record.
        model_name (`str`, *optional*):
            The `model-index` name when the card has none. Defaults to the folder's name.
        notes (`str`, *optional*):
            Markdown added below the table: how the latest evaluation was made and whether each benchmark is in- or
            out-of-distribution ([`evaluation_notes`]).

    Returns:
        [`~huggingface_hub.ModelCard`]: the saved card.
    """
    path = os.path.join(model_dir, "README.md")
    name = model_name or os.path.basename(os.path.normpath(model_dir))
    if os.path.isfile(path):
        card = ModelCard.load(path)
    else:
        card = ModelCard(f"---\n{ModelCardData(model_name=name, tags=['instrl-trl']).to_yaml()}\n---\n\n# {name}\n")
    card.data.eval_results = merge_eval_results(card.data.eval_results, eval_results)
    card.data.model_name = card.data.model_name or name
    body = results_table(card.data.eval_results) + (f"\n\n{notes}" if notes else "")
    card.text = _replace_section(card.text, "Evaluation", body)
    write_text_atomically(path, str(card))  # a cut card would lose the model's description
    return card


def evaluation_notes(results: dict[str, Any]) -> str:
    """
    The card's notes on one model's latest evaluation (its `eval_results.json` content): each benchmark against the
    training data's constraint ids, with a warning block on overlap, then the harness settings.
    """
    parts = []
    lines = distribution_lines(results)
    if lines:
        training = results.get("training_constraints") or {}
        source = training.get("source") or "not recorded"
        if source == "train_dataset":  # a Hub id is named; a local path never reaches a card
            dataset = training.get("train_dataset") or ""
            source = "`train_dataset`" + ("" if os.path.exists(dataset) else f" {dataset}")
        parts.append(f"Benchmarks against the training data's constraint ids (from {source}):\n\n" + "\n".join(lines))
    for name, scores in results.get("benchmarks", {}).items():
        if (scores.get("distribution") or {}).get("relation") == "overlapping":
            model = os.path.basename(os.path.normpath(results["model"]))  # a card never carries a local path
            parts.append(f"> [!WARNING]\n> {overlap_warning(model, name, scores['distribution'])}")
    parts.append("How the latest evaluation was made:\n\n" + "\n".join(harness_card_lines(results)))
    return "\n\n".join(parts)


def push_model_card(model_dir: str, hub_model_id: str) -> str:
    """Pushes the card and images of `model_dir` to the model repository `hub_model_id`; returns the commit URL."""
    from ..hub.push import push_folder

    url = push_folder(model_dir, hub_model_id, "model", allow_patterns=["README.md", "*.png"])
    logger.info(f"Model card pushed: {url}")
    return url
