"""The model card side of the `evaluate` stage: scores into a local card's `model-index` and "Evaluation" section."""

import logging
import os
import re

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..metrics.benchmarks import BenchmarkAdapter
from .evaluation_config import BenchmarkEvaluationConfig


logger = logging.getLogger(__name__)


def dataset_id(benchmark: str) -> str:
    """The benchmark's name as a card shows it: a Hub id, or a local file or folder's name (never a path)."""
    if os.path.exists(benchmark):
        return os.path.splitext(os.path.basename(os.path.normpath(benchmark)))[0]
    return benchmark


def to_eval_results(results: dict, config: BenchmarkEvaluationConfig, adapter: BenchmarkAdapter) -> list[EvalResult]:
    """The benchmark's scores (`adapter.scores`) as [`~huggingface_hub.EvalResult`]s for the card's `model-index`."""
    dataset_type = dataset_id(config.benchmark)
    return [
        EvalResult(
            task_type="text-generation",
            task_name="Text Generation",
            dataset_type=dataset_type,
            dataset_name=adapter.dataset_name(dataset_type),
            dataset_config=config.benchmark_config,
            dataset_split=results["benchmark_split"],
            dataset_args={"num_few_shot": 0},
            metric_type=score,
            metric_name=name,
            metric_value=round(results[score], 4),
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
    """The card's "Evaluation" section body: a markdown table, one line per result."""
    lines = ["| Benchmark | Metric | Value |", "|---|---|---|"]
    for result in eval_results:
        benchmark = result.dataset_name or result.dataset_type
        if result.dataset_split:
            benchmark += f" ({result.dataset_split})"
        lines.append(f"| {benchmark} | {result.metric_name or result.metric_type} | {result.metric_value} |")
    return "\n".join(lines)


def _replace_section(content: str, heading: str, body: str) -> str:
    # The section runs from its `## heading` line to the next heading of level 1 or 2 (or the end)
    pattern = re.compile(rf"^## {re.escape(heading)}[ \t]*\n.*?(?=^#{{1,2}} |\Z)", flags=re.MULTILINE | re.DOTALL)
    section = f"## {heading}\n\n{body}\n\n"
    if pattern.search(content):
        return pattern.sub(lambda _: section, content, count=1)
    return content.rstrip("\n") + f"\n\n{section}"


def update_model_card(model_dir: str, eval_results: list[EvalResult], model_name: str | None = None) -> ModelCard:
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
    card.text = _replace_section(card.text, "Evaluation", results_table(card.data.eval_results))
    card.save(path)
    return card


def push_model_card(model_dir: str, hub_model_id: str) -> str:
    """Pushes the card and images of `model_dir` to the model repository `hub_model_id`; returns the commit URL."""
    from ..hub.push import push_folder

    url = push_folder(model_dir, hub_model_id, "model", allow_patterns=["README.md", "*.png"])
    logger.info(f"Model card pushed: {url}")
    return url
