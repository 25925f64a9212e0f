"""
The `evaluate` stage: models answer one or more benchmarks, each row is checked once, and each benchmark's scores go
to `eval_results.json`, a per-prompt JSONL and each local model's card (`model-index`). A benchmark's type (columns,
checks, score names) is an adapter looked up by name ([`~instrl_trl.metrics.benchmarks.get_benchmark`]), so a new
benchmark does not change this module.
"""

import json
import logging
import os
from dataclasses import dataclass, fields
from typing import Any

from datasets import Dataset
from transformers import AutoConfig

from ..backends.role_arguments import TRANSPORT_SETTINGS
from ..evaluation.benchmark_rows import BenchmarkSpec, check_benchmark_rows, load_benchmark
from ..evaluation.card import evaluation_notes, push_model_card, to_eval_results, update_model_card
from ..evaluation.comparison import (
    COMPARISON_PLOT_FILE,
    format_comparison_table,
    plot_comparison,
    print_distribution,
    print_settings_differences,
)
from ..evaluation.distribution import annotate_distribution, training_constraints_of
from ..evaluation.evaluation_config import BenchmarkEvaluationConfig
from ..evaluation.lm_eval_tasks import check_lm_eval_tasks, lm_eval_to_eval_results, run_lm_eval
from ..evaluation.responses import generate_responses
from ..evaluation.results import (
    PREDICTIONS_FILE,
    RESULTS_FILE,
    benchmark_settings,
    is_results_file,
    model_output_dirs,
    prediction_rows,
    read_results_file,
    run_settings,
    write_predictions,
    write_results,
)
from ..metrics.benchmarks import BenchmarkAdapter
from ..metrics.scoring import aggregate, check_rows
from ..models.builtin import resolve_model_name
from ..runs.folder import claim_run_folder, fingerprint_folder


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedBenchmark:
    """One benchmark of the run: its entry, its adapter and its rows (checked)."""

    spec: BenchmarkSpec
    adapter: BenchmarkAdapter
    rows: Dataset


def load_benchmarks(config: BenchmarkEvaluationConfig) -> list[LoadedBenchmark]:
    """Loads every benchmark of `config.benchmark` and checks its columns and rows, before any model is loaded."""
    loaded = []
    for spec in config.benchmark_specs:
        adapter = spec.adapter
        rows = load_benchmark(
            adapter, spec.dataset, config.benchmark_config, config.benchmark_split, config.max_samples
        )
        if not rows.num_rows:
            raise ValueError(f"The benchmark {spec.name!r} ({spec.dataset}) has no row: there is nothing to evaluate.")
        skipped = check_benchmark_rows(adapter, rows, config.on_invalid)
        if len(skipped) == rows.num_rows:
            raise ValueError(
                f"Every one of the {rows.num_rows} rows of the benchmark {spec.name!r} would be skipped (e.g. "
                f"{skipped[0]}): no score could be computed. Check that `benchmark` names the right dataset for its "
                "type, or fix the rows."
            )
        loaded.append(LoadedBenchmark(spec, adapter, rows))
    return loaded


def check_models_exist(config: BenchmarkEvaluationConfig) -> None:
    """
    Loads the config of every model of `config.models` (local folder or Hub id) before the first one is evaluated, so
    that a missing `models[1]` fails now and not after `models[0]` is done. Models served by `generator` are not
    checked here: their server knows them.
    """
    if config.generator is not None:
        return
    for index, model in enumerate(config.models):
        if is_results_file(model):
            continue
        try:
            # A built-in name (`instrl-tiny-chat`, `smollm2-135m-instruct`) is built or converted here, once
            AutoConfig.from_pretrained(resolve_model_name(model))
        except (OSError, ValueError) as error:
            raise ValueError(
                f"`models[{index}]` ({model!r}) cannot be loaded: {str(error).rstrip('.')}. Pass an existing local "
                "model folder or a Hub model id; no model was evaluated."
            ) from None


def run_evaluate(config: BenchmarkEvaluationConfig) -> dict[str, dict[str, Any]]:
    r"""
    Runs the `evaluate` stage: every model of `config.models` answers every benchmark, in batches, and is scored.

    For each model, `output_dir/<model name>/` receives `eval_results.json` (the run's settings, and under
    `benchmarks` each benchmark's scores, breakdowns, skipped rows and settings) and `predictions.jsonl` (one line per
    prompt: `benchmark`, `key`, `prompt`, `response`, and the strict and loose verdict of each instruction). With
    `resume`, a model whose results are already there with the same settings is not run again. A local model folder's
    card gets every benchmark's scores in its `model-index` (when `update_model_card`), and `models[0]`'s card is
    pushed (when `push_to_hub`). With several models, `output_dir/comparison.png` compares them, one panel per
    benchmark. A summary table per benchmark is printed.

    Every benchmark's columns and rows, and the lm-eval tasks' data, are checked before any model is loaded, and
    `output_dir` is claimed as by every stage ([`~instrl_trl.runs.folder.claim_run_folder`]): locked for the run (a
    second `evaluate` into it fails at once, naming the first), and fingerprinted with the recipe
    ([`evaluation_fingerprint`]): a rerun with another recipe is refused, naming the fields that differ, unless
    `overwrite_output_dir`. Each model's results also record the settings they were made with (chat template and
    package versions included), which `resume` compares before skipping a finished model. Results, predictions and
    cards are written atomically.

    Args:
        config ([`BenchmarkEvaluationConfig`]):
            The stage's configuration.

    Returns:
        `dict[str, dict]`: model (as given in `config.models`) -> the content of its `eval_results.json`.
    """
    benchmarks = load_benchmarks(config)
    if config.lm_eval_tasks:
        check_lm_eval_tasks(config.lm_eval_tasks)
    check_models_exist(config)
    if config.push_to_hub and not os.path.isdir(config.models[0]):
        raise ValueError(
            f"`push_to_hub` pushes the card of `models[0]`, which must be a local folder; got {config.models[0]!r}."
        )
    with claim_run_folder(
        config.output_dir, "evaluate", evaluation_fingerprint(config), config.overwrite_output_dir, EVALUATION_OUTPUTS
    ):
        return _evaluate_models(config, benchmarks)


# What `evaluate` writes in `output_dir`, removed by `overwrite_output_dir`
EVALUATION_OUTPUTS = (f"*/{RESULTS_FILE}", f"*/{PREDICTIONS_FILE}", COMPARISON_PLOT_FILE)
# Fields that say where results go or what else is done with them, never what they are
_NOT_FINGERPRINTED = (
    "output_dir",
    "resume",
    "overwrite_output_dir",
    "update_model_card",
    "push_to_hub",
    "hub_model_id",
)


def evaluation_fingerprint(config: BenchmarkEvaluationConfig) -> dict[str, Any]:
    """
    What defines an `evaluate` run's output, under the recipe's field names (so that a refusal names them): every
    field but those of `_NOT_FINGERPRINTED`, the generator's mapping without its transport settings (a server moved to
    another port gives the same answers), and a digest of each local model folder's weights and configs (a model
    trained again into the same folder is another model).
    """
    fingerprint = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in _NOT_FINGERPRINTED}
    if config.generator is not None:
        fingerprint["generator"] = {k: v for k, v in config.generator.items() if k not in TRANSPORT_SETTINGS}
    fingerprint["model_files"] = [fingerprint_folder(model) for model in config.models]
    return fingerprint


def _evaluate_models(config: BenchmarkEvaluationConfig, benchmarks: list["LoadedBenchmark"]) -> dict[str, dict]:
    earlier = {m: read_results_file(m, [b.spec.name for b in benchmarks]) for m in config.models if is_results_file(m)}
    results = {}
    for model, folder in zip(config.models, model_output_dirs(config.models, config.output_dir), strict=True):
        if model in earlier:  # an earlier run's results, shown side by side
            results[model] = earlier[model]
            continue
        results[model] = (config.resume and load_finished_results(folder, model, config, benchmarks)) or (
            evaluate_model(model, folder, benchmarks, config)
        )
        compare_with_training_data(results[model], folder, benchmarks, config)
        eval_results = [
            result
            for benchmark in benchmarks
            for result in to_eval_results(results[model]["benchmarks"][benchmark.spec.name], benchmark.adapter)
        ]
        eval_results += lm_eval_to_eval_results(results[model].get("lm_eval", {}))
        if config.update_model_card and os.path.isdir(model):
            name = os.path.basename(os.path.normpath(model))
            update_model_card(model, eval_results, model_name=name, notes=evaluation_notes(results[model]))
    if config.push_to_hub:
        push_model_card(config.models[0], config.hub_model_id)
    if len(config.models) > 1:
        plot_comparison(
            {b.spec.name: {m: r["benchmarks"][b.spec.name] for m, r in results.items()} for b in benchmarks},
            {b.spec.name: b.adapter.scores for b in benchmarks},
            os.path.join(config.output_dir, COMPARISON_PLOT_FILE),
        )
    print_summary(results, benchmarks, config)
    unscored = [
        f"{model} on {name}"
        for model, model_results in results.items()
        for name, scores in model_results["benchmarks"].items()
        if not scores["num_scored"]
    ]
    if unscored:
        raise RuntimeError(
            f"No row could be scored for {', '.join(unscored)} (every row was skipped, see `skipped` in "
            f"{RESULTS_FILE}): the scores are null, not results. Fix the rows or the answers and run again."
        )
    return results


def evaluate_model(
    model: str, folder: str, benchmarks: list[LoadedBenchmark], config: BenchmarkEvaluationConfig
) -> dict[str, Any]:
    """
    Answers every benchmark's prompts (one generation pass: the model is loaded once), checks each row once, writes
    `predictions.jsonl` and `eval_results.json`; returns the results.
    """
    rows = [list(benchmark.rows) for benchmark in benchmarks]
    prompts = [row["prompt"] for benchmark_rows in rows for row in benchmark_rows]
    all_responses = generate_responses(model, prompts, config)
    results = run_settings(model, config)
    results["benchmarks"] = {}
    predictions = []
    start = 0
    for benchmark, benchmark_rows in zip(benchmarks, rows, strict=True):
        answers = all_responses[start : start + len(benchmark_rows)]
        start += len(benchmark_rows)
        num_failed = sum(answer is None for answer in answers)
        responses = [answer or "" for answer in answers]
        row_results = check_rows(benchmark.adapter, benchmark_rows, responses, config.on_invalid)
        scores = aggregate(row_results)
        scores.update(benchmark_settings(benchmark.spec, config, len(benchmark_rows), num_failed))
        results["benchmarks"][benchmark.spec.name] = scores
        predictions += prediction_rows(benchmark.spec.name, responses, benchmark.rows, row_results)
    write_predictions(folder, predictions)
    write_results(folder, results)
    if config.lm_eval_tasks:  # after the benchmarks' files are written: a failing task loses none of them
        results["lm_eval"] = run_lm_eval(model, config)
        write_results(folder, results)
    return results


def load_finished_results(
    folder: str, model: str, config: BenchmarkEvaluationConfig, benchmarks: list[LoadedBenchmark]
) -> dict[str, Any] | None:
    """The results an earlier run wrote for `model` with the same settings, benchmarks and lm-eval tasks, or `None`."""
    path = os.path.join(folder, RESULTS_FILE)
    if not (os.path.isfile(path) and os.path.isfile(os.path.join(folder, PREDICTIONS_FILE))):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            results = json.load(file)
    except (OSError, ValueError) as error:
        # Written atomically, so only something else could have cut it: evaluate again rather than trust it
        logger.warning(f"{path} is unreadable ({error}); evaluating {model} again instead of resuming it.")
        return None
    expected = json.loads(json.dumps(run_settings(model, config)))
    if any(results.get(key) != value for key, value in expected.items()):
        return None
    done = results.get("benchmarks", {})
    if set(done) != {benchmark.spec.name for benchmark in benchmarks}:
        return None
    for benchmark in benchmarks:
        settings = benchmark_settings(benchmark.spec, config, benchmark.rows.num_rows, num_failed=0)
        settings.pop("num_failed_generations")
        if any(done[benchmark.spec.name].get(key) != value for key, value in json.loads(json.dumps(settings)).items()):
            return None
    if config.lm_eval_tasks and "lm_eval" not in results:
        return None
    logger.info(f"Results of {model} found in {path} with the same settings: not evaluated again (`resume`).")
    return results


def compare_with_training_data(
    results: dict[str, Any], folder: str, benchmarks: list[LoadedBenchmark], config: BenchmarkEvaluationConfig
) -> None:
    """Records in `results` (and its `eval_results.json`) each benchmark's relation to the training constraints."""
    benchmark_ids = {b.spec.name: {i for ids in b.rows["instruction_id_list"] for i in ids} for b in benchmarks}
    annotate_distribution(results, benchmark_ids, training_constraints_of(results["model"], config))
    write_results(folder, results)


def print_summary(
    results: dict[str, dict], benchmarks: list[LoadedBenchmark], config: BenchmarkEvaluationConfig
) -> None:
    """Prints one comparison table per benchmark, the skipped rows and where the results went."""
    for benchmark in benchmarks:
        name = benchmark.spec.name
        by_model = {model: model_results["benchmarks"][name] for model, model_results in results.items()}
        print(f"\n{name} ({benchmark.adapter.name})")  # noqa: T201
        print(format_comparison_table(by_model, benchmark.adapter.scores))  # noqa: T201
        print_distribution(name, by_model)
        for model, scores in by_model.items():
            if scores["num_skipped"]:
                keys = ", ".join(str(row["key"]) for row in scores["skipped"])
                print(f"{model}: {scores['num_skipped']} rows of {name} skipped (keys: {keys}).")  # noqa: T201
    print_settings_differences(results)
    output_dir = os.path.abspath(config.output_dir)
    print(f"Results written to {output_dir}")  # noqa: T201
    if len(results) > 1:
        print(f"Comparison chart: {os.path.join(output_dir, COMPARISON_PLOT_FILE)}")  # noqa: T201
    if config.push_to_hub:
        print(f"Model card pushed to {config.hub_model_id}")  # noqa: T201
