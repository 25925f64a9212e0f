"""
The `evaluate` stage: models answer a benchmark, each row is checked once, and the scores go to `eval_results.json`,
a per-prompt JSONL and each local model's card (`model-index`). The benchmark's type (columns, checks, score names)
is an adapter looked up by name ([`~instrl_trl.metrics.benchmarks.get_benchmark`]), so a new benchmark does not
change this module.
"""

import json
import logging
import os
from typing import Any

from datasets import Dataset

from ..metrics.benchmarks import BenchmarkAdapter, get_benchmark
from ..metrics.scoring import aggregate, check_rows
from .benchmark_rows import check_benchmark_rows, load_benchmark
from .card import push_model_card, to_eval_results, update_model_card
from .comparison import COMPARISON_PLOT_FILE, format_comparison_table, plot_comparison
from .evaluation_config import BenchmarkEvaluationConfig
from .lm_eval_tasks import check_lm_eval_tasks, lm_eval_to_eval_results, run_lm_eval
from .responses import generate_responses
from .results import (
    PREDICTIONS_FILE,
    RESULTS_FILE,
    model_output_dirs,
    prediction_rows,
    run_settings,
    write_predictions,
    write_results,
)


logger = logging.getLogger(__name__)


def run_evaluate(config: BenchmarkEvaluationConfig) -> dict[str, dict[str, Any]]:
    r"""
    Runs the `evaluate` stage: every model of `config.models` answers the benchmark, in batches, and is scored.

    For each model, `output_dir/<model name>/` receives `eval_results.json` (the scores and the run's settings) and
    `predictions.jsonl` (one line per prompt: `key`, `prompt`, `response`, and the strict and loose verdict of each
    instruction). With `resume`, a model whose results are already there with the same settings is not run again.
    A local model folder's card gets the scores in its `model-index` (when `update_model_card`), and `models[0]`'s
    card is pushed (when `push_to_hub`). With several models, `output_dir/comparison.png` compares them. A summary
    table is printed.

    The benchmark's columns and rows, and the lm-eval tasks' data, are checked before any model is loaded.

    Args:
        config ([`BenchmarkEvaluationConfig`]):
            The stage's configuration.

    Returns:
        `dict[str, dict]`: model (as given in `config.models`) -> the content of its `eval_results.json`.
    """
    adapter = get_benchmark(config.benchmark_type)
    benchmark = load_benchmark(
        adapter, config.benchmark, config.benchmark_config, config.benchmark_split, config.max_samples
    )
    check_benchmark_rows(adapter, benchmark, config.on_invalid)
    if config.lm_eval_tasks:
        check_lm_eval_tasks(config.lm_eval_tasks)
    if config.push_to_hub and not os.path.isdir(config.models[0]):
        raise ValueError(
            f"`push_to_hub` pushes the card of `models[0]`, which must be a local folder; got {config.models[0]!r}."
        )
    results = {}
    for model, folder in zip(config.models, model_output_dirs(config.models, config.output_dir), strict=True):
        results[model] = (config.resume and load_finished_results(folder, model, config, benchmark.num_rows)) or (
            evaluate_model(model, folder, adapter, benchmark, config)
        )
        eval_results = to_eval_results(results[model], config, adapter)
        eval_results += lm_eval_to_eval_results(results[model].get("lm_eval", {}))
        if config.update_model_card and os.path.isdir(model):
            update_model_card(model, eval_results, model_name=os.path.basename(os.path.normpath(model)))
    if config.push_to_hub:
        push_model_card(config.models[0], config.hub_model_id)
    if len(config.models) > 1:
        plot_comparison(results, adapter.scores, os.path.join(config.output_dir, COMPARISON_PLOT_FILE))
    print_summary(results, adapter, config)
    return results


def evaluate_model(
    model: str, folder: str, adapter: BenchmarkAdapter, benchmark: Dataset, config: BenchmarkEvaluationConfig
) -> dict[str, Any]:
    """Answers, checks each row once, writes `predictions.jsonl` and `eval_results.json`; returns the results."""
    rows = list(benchmark)
    responses, num_failed = generate_responses(model, [row["prompt"] for row in rows], config)
    row_results = check_rows(adapter, rows, responses, config.on_invalid)
    results = aggregate(row_results)
    results.update(run_settings(model, config, benchmark.num_rows, num_failed))
    write_predictions(folder, prediction_rows(responses, benchmark, row_results))
    write_results(folder, results)
    if config.lm_eval_tasks:  # after the benchmark's files are written: a failing task loses none of them
        results["lm_eval"] = run_lm_eval(model, config)
        write_results(folder, results)
    return results


def load_finished_results(
    folder: str, model: str, config: BenchmarkEvaluationConfig, num_samples: int
) -> dict[str, Any] | None:
    """The results an earlier run wrote for `model` with the same settings (and lm-eval tasks), or `None`."""
    path = os.path.join(folder, RESULTS_FILE)
    if not (os.path.isfile(path) and os.path.isfile(os.path.join(folder, PREDICTIONS_FILE))):
        return None
    with open(path, encoding="utf-8") as file:
        results = json.load(file)
    settings = run_settings(model, config, num_samples, num_failed=0)
    settings.pop("num_failed_generations")
    if any(results.get(key) != value for key, value in json.loads(json.dumps(settings)).items()):
        return None
    if config.lm_eval_tasks and "lm_eval" not in results:
        return None
    logger.info(f"Results of {model} found in {path} with the same settings: not evaluated again (`resume`).")
    return results


def print_summary(results: dict[str, dict], adapter: BenchmarkAdapter, config: BenchmarkEvaluationConfig) -> None:
    """Prints the comparison table, the skipped rows and where the results went."""
    print(format_comparison_table(results, adapter.scores))  # noqa: T201
    for scores in results.values():
        if scores["num_skipped"]:
            keys = ", ".join(str(row["key"]) for row in scores["skipped"])
            print(f"{scores['model']}: {scores['num_skipped']} rows skipped (keys: {keys}).")  # noqa: T201
    output_dir = os.path.abspath(config.output_dir)
    print(f"Results written to {output_dir}")  # noqa: T201
    if len(results) > 1:
        print(f"Comparison chart: {os.path.join(output_dir, COMPARISON_PLOT_FILE)}")  # noqa: T201
    if config.push_to_hub:
        print(f"Model card pushed to {config.hub_model_id}")  # noqa: T201
