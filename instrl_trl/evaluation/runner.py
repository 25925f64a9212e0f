"""
The `evaluate` stage: models answer an IFEval-schema benchmark, the `instruction_following` metric scores the answers,
and the scores go to `eval_results.json`, a per-prompt JSONL and each local model's card (`model-index`).
"""

import gc
import json
import logging
import os
import re
from importlib.resources import files
from typing import Any

from datasets import Dataset
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.loading import load_dataset_by_name
from ..hub.plots import pyplot
from .constraints import InvalidReferenceError, build_checkers, check_row
from .evaluation_config import BenchmarkEvaluationConfig
from .lm_eval_tasks import check_lm_eval_tasks, lm_eval_to_eval_results, run_lm_eval


logger = logging.getLogger(__name__)

IFEVAL_COLUMNS = ("key", "prompt", "instruction_id_list", "kwargs")
# lm-eval's names for IFEval's four scores, with the names the card shows
IFEVAL_SCORES = {
    "prompt_level_strict_acc": "Prompt-level strict accuracy",
    "inst_level_strict_acc": "Instruction-level strict accuracy",
    "prompt_level_loose_acc": "Prompt-level loose accuracy",
    "inst_level_loose_acc": "Instruction-level loose accuracy",
}
RESULTS_FILE = "eval_results.json"
PREDICTIONS_FILE = "predictions.jsonl"
COMPARISON_PLOT_FILE = "comparison.png"
# The ~40-prompt IFEval-schema sample shipped in the package (own prompts, Apache-2.0): offline runs and tests
IFEVAL_SAMPLE_PATH = str(files("instrl_trl.data").joinpath("ifeval_sample.jsonl"))


def evaluate_models(config: BenchmarkEvaluationConfig) -> dict[str, dict[str, Any]]:
    r"""
    Runs the `evaluate` stage: every model of `config.models` answers the benchmark, in batches, and is scored.

    For each model, `output_dir/<model name>/` receives `eval_results.json` (the metric's results and the run's
    settings) and `predictions.jsonl` (one line per prompt: `key`, `prompt`, `response`, and the strict and loose
    verdict of each instruction). A local model folder's card gets the four scores in its `model-index` (when
    `update_model_card`), and `models[0]`'s card is pushed (when `push_to_hub`). With several models,
    `output_dir/comparison.png` compares them.

    The benchmark's columns and rows, and the lm-eval tasks' data, are checked before any model is loaded.

    Args:
        config ([`BenchmarkEvaluationConfig`]):
            The stage's configuration.

    Returns:
        `dict[str, dict]`: model (as given in `config.models`) -> the content of its `eval_results.json`.
    """
    benchmark = load_benchmark(config.benchmark, config.benchmark_config, config.benchmark_split, config.max_samples)
    check_benchmark_rows(benchmark, config.on_invalid)
    if config.lm_eval_tasks:
        check_lm_eval_tasks(config.lm_eval_tasks)
    if config.push_to_hub and not os.path.isdir(config.models[0]):
        raise ValueError(
            f"`push_to_hub` pushes the card of `models[0]`, which must be a local folder; got {config.models[0]!r}."
        )
    results = {}
    for model, folder in zip(config.models, model_output_dirs(config.models, config.output_dir), strict=True):
        responses, num_failed = generate_responses(model, list(benchmark["prompt"]), config)
        results[model] = score_responses(responses, benchmark, config.on_invalid)
        results[model].update(run_settings(model, config, benchmark.num_rows, num_failed))
        write_predictions(folder, responses, benchmark)
        write_results(folder, results[model])
        if config.lm_eval_tasks:  # after the IFEval files are written: a failing task loses none of them
            results[model]["lm_eval"] = run_lm_eval(model, config)
            write_results(folder, results[model])
        eval_results = to_eval_results(results[model], config)
        eval_results += lm_eval_to_eval_results(results[model].get("lm_eval", {}))
        if config.update_model_card and os.path.isdir(model):
            update_model_card(model, eval_results, model_name=os.path.basename(os.path.normpath(model)))
    if config.push_to_hub:
        push_model_card(config.models[0], config.hub_model_id)
    if len(config.models) > 1:
        plot_comparison(results, os.path.join(config.output_dir, COMPARISON_PLOT_FILE))
    return results


def load_benchmark(
    benchmark: str, config_name: str | None = None, split: str = "train", max_samples: int | None = None
) -> Dataset:
    r"""
    Loads an IFEval-schema benchmark and checks its columns.

    Args:
        benchmark (`str`):
            A Hub dataset id, a local file (`.jsonl`, `.json`, `.parquet`, `.csv`) or a `save_to_disk` folder.
        config_name (`str`, *optional*):
            Configuration name of the Hub dataset.
        split (`str`, *optional*, defaults to `"train"`):
            Split of the Hub dataset.
        max_samples (`int`, *optional*):
            Keep only the first `max_samples` rows.

    Returns:
        [`~datasets.Dataset`]: the rows, with at least the columns `key`, `prompt`, `instruction_id_list`, `kwargs`.

    Raises:
        `ValueError`: a column is missing; the message names it.
    """
    dataset = load_dataset_by_name(benchmark, config_name, split)
    missing = [column for column in IFEVAL_COLUMNS if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"The benchmark {benchmark!r} has no column {', '.join(repr(c) for c in missing)}; an IFEval-schema "
            f"benchmark has the columns {', '.join(IFEVAL_COLUMNS)} (found: {', '.join(dataset.column_names)}). "
            "Convert it, e.g. as `google/IFEval` is laid out."
        )
    if max_samples is not None and max_samples < dataset.num_rows:
        dataset = dataset.select(range(max_samples))
    return dataset


def check_benchmark_rows(benchmark: Dataset, on_invalid: str = "skip") -> list[dict]:
    """
    Builds lm-eval's checkers of every row before anything is generated: a row that cannot be scored raises with
    `on_invalid="raise"`, and is logged (then skipped by the metric) with `"skip"`. Returns the invalid rows' `key`
    and reason.
    """
    invalid = []
    for row in benchmark:
        try:
            build_checkers(row["instruction_id_list"], row["kwargs"], prompt=row["prompt"])
        except InvalidReferenceError as error:
            if on_invalid == "raise":
                raise ValueError(
                    f"Benchmark row with key {row['key']!r} cannot be scored: {error}. Fix the row, or set "
                    '`on_invalid="skip"` to leave it out and list it under `skipped`.'
                ) from error
            invalid.append({"key": row["key"], "reason": str(error)})
    if invalid:
        logger.warning(
            f"{len(invalid)} benchmark rows cannot be scored and will be skipped (keys: "
            f"{', '.join(str(row['key']) for row in invalid)}); see `skipped` in {RESULTS_FILE}."
        )
    return invalid


def model_output_dirs(models: list[str], output_dir: str) -> list[str]:
    """One folder per model under `output_dir`: a local folder's name, or a Hub id with `/` as `--`."""
    names = []
    for model in models:
        name = os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model.replace("/", "--")
        name = re.sub(r"[^\w.-]", "_", name) or "model"
        names.append(name if name not in names else f"{name}-{len(names)}")
    return [os.path.join(output_dir, name) for name in names]


def build_benchmark_generator(model: str, config: BenchmarkEvaluationConfig):
    """The [`TextGenerator`] answering for `model`: the transformers backend, or `config.generator`'s backend."""
    from ..backends.roles import build_generator

    spec = {"backend": "transformers", **(config.generator or {}), "model": model}
    if spec["backend"] == "transformers":
        defaults = {
            "batch_size": config.batch_size,
            "max_new_tokens": config.max_new_tokens,
            "generation_kwargs": config.generation_kwargs,
            "dtype": config.dtype,
            "seed": config.seed,
        }
    else:  # OpenAI-style endpoints name the length limit `max_tokens`
        defaults = {"generation_kwargs": {"max_tokens": config.max_new_tokens, **(config.generation_kwargs or {})}}
        defaults["seed"] = config.seed
    return build_generator("generator", {**defaults, **spec})


def generate_responses(model: str, prompts: list[str], config: BenchmarkEvaluationConfig) -> tuple[list[str], int]:
    """
    Answers `prompts` with `model` in batches; returns the responses and the number of failed queries (answered by
    `""`, which follows no instruction, as lm-eval counts an empty response). The model is freed afterwards.
    """
    import torch
    from tqdm.auto import tqdm

    generator = build_benchmark_generator(model, config)
    step = config.batch_size * 4  # a few batches per call: progress without breaking the length-sorted batching
    responses = []
    for start in tqdm(range(0, len(prompts), step), desc=f"Generating ({model})", unit="batch"):
        responses += [generation.text for generation in generator.generate(list(prompts[start : start + step]))]
    del generator
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    num_failed = sum(response is None for response in responses)
    if num_failed:
        logger.warning(f"{num_failed} queries to {model} failed; their empty responses follow no instruction.")
    return [response or "" for response in responses], num_failed


def to_references(benchmark: Dataset) -> list[str]:
    """The metric's references: each row's IFEval columns as a JSON string."""
    return [json.dumps({column: row[column] for column in IFEVAL_COLUMNS}) for row in benchmark]


def score_responses(responses: list[str], benchmark: Dataset, on_invalid: str = "skip") -> dict[str, Any]:
    """The packaged `instruction_following` metric on the responses (see its `inputs_description`)."""
    from ..metrics import load_instruction_following

    metric = load_instruction_following()
    return metric.compute(predictions=responses, references=to_references(benchmark), on_invalid=on_invalid)


def run_settings(model: str, config: BenchmarkEvaluationConfig, num_samples: int, num_failed: int) -> dict:
    """What produced the scores, stored beside them in `eval_results.json`."""
    backend = (config.generator or {}).get("backend", "transformers")
    return {
        "model": model,
        "backend": backend,
        "benchmark": config.benchmark,
        "benchmark_config": config.benchmark_config,
        "benchmark_split": benchmark_split_name(config, num_samples),
        "num_samples": num_samples,
        "num_failed_generations": num_failed,
        "max_new_tokens": config.max_new_tokens,
        "generation_kwargs": config.generation_kwargs or {},
        "seed": config.seed,
    }


def benchmark_split_name(config: BenchmarkEvaluationConfig, num_samples: int) -> str:
    """The split as evaluated, e.g. `train[:10]` when `max_samples` cut it."""
    cut = config.max_samples is not None and num_samples == config.max_samples
    return f"{config.benchmark_split}[:{num_samples}]" if cut else config.benchmark_split


def prediction_rows(responses: list[str], benchmark: Dataset) -> list[dict]:
    """One JSON-ready row per prompt: the row's IFEval columns, the response and each instruction's verdicts."""
    rows = []
    for response, row in zip(responses, benchmark, strict=True):
        kwargs = [{k: v for k, v in (kwargs or {}).items() if v is not None} for kwargs in row["kwargs"]]
        out = {"key": row["key"], "prompt": row["prompt"], "response": response}
        out.update(instruction_id_list=row["instruction_id_list"], kwargs=kwargs)
        try:
            verdict = check_row(response, row["instruction_id_list"], row["kwargs"], prompt=row["prompt"])
        except InvalidReferenceError as error:
            out.update(skipped=str(error))
        else:
            out["instructions"] = [
                {"instruction_id": instruction_id, "strict": strict, "loose": loose}
                for instruction_id, strict, loose in zip(
                    row["instruction_id_list"], verdict.strict, verdict.loose, strict=True
                )
            ]
            out.update(prompt_level_strict=verdict.prompt_level_strict, prompt_level_loose=verdict.prompt_level_loose)
        rows.append(out)
    return rows


def write_results(folder: str, results: dict) -> str:
    """Writes `results` to `folder/eval_results.json`; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, RESULTS_FILE)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=2, ensure_ascii=False)
        file.write("\n")
    logger.info(f"Results of {results['model']} written to {path}.")
    return path


def write_predictions(folder: str, responses: list[str], benchmark: Dataset) -> str:
    """Writes one JSON line per prompt (see [`prediction_rows`]) to `folder/predictions.jsonl`; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, PREDICTIONS_FILE)
    with open(path, "w", encoding="utf-8") as file:
        file.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in prediction_rows(responses, benchmark))
    return path


def _dataset_id(benchmark: str) -> str:
    # A local path never goes into a card: its file or folder name stands for it
    if os.path.exists(benchmark):
        return os.path.splitext(os.path.basename(os.path.normpath(benchmark)))[0]
    return benchmark


def to_eval_results(results: dict, config: BenchmarkEvaluationConfig) -> list[EvalResult]:
    """The four IFEval scores as [`~huggingface_hub.EvalResult`]s for the card's `model-index`."""
    dataset_type = _dataset_id(config.benchmark)
    return [
        EvalResult(
            task_type="text-generation",
            task_name="Text Generation",
            dataset_type=dataset_type,
            dataset_name="IFEval" if dataset_type == "google/IFEval" else dataset_type,
            dataset_config=config.benchmark_config,
            dataset_split=results["benchmark_split"],
            dataset_args={"num_few_shot": 0},
            metric_type=score,
            metric_name=name,
            metric_value=round(results[score], 4),
        )
        for score, name in IFEVAL_SCORES.items()
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


def _model_label(model: str) -> str:
    return os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model


def format_comparison_table(results: dict[str, dict]) -> str:
    """A markdown table of the four IFEval scores, one row per model (the terminal summary)."""
    header = ["Model", *IFEVAL_SCORES, "scored", "skipped"]
    rows = [
        [
            _model_label(model),
            *(f"{scores[s]:.4f}" for s in IFEVAL_SCORES),
            scores["num_scored"],
            scores["num_skipped"],
        ]
        for model, scores in results.items()
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) + " |"
        for line in lines
    )


def plot_comparison(results: dict[str, dict], path: str) -> str:
    """Draws the four IFEval scores of every model as grouped bars into a PNG at `path`; returns `path`."""
    plt = pyplot()

    width = 0.8 / len(results)
    figure, axis = plt.subplots(figsize=(8, 4))
    for i, (model, scores) in enumerate(results.items()):
        positions = [j + (i - (len(results) - 1) / 2) * width for j in range(len(IFEVAL_SCORES))]
        axis.bar(positions, [scores[score] for score in IFEVAL_SCORES], width, label=_model_label(model))
    axis.set_xticks(range(len(IFEVAL_SCORES)), [name.replace(" accuracy", "") for name in IFEVAL_SCORES.values()])
    axis.set_ylim(0, 1)
    axis.set_ylabel("accuracy")
    benchmark = next(iter(results.values()))
    axis.set_title(f"{_dataset_id(benchmark['benchmark'])} ({benchmark['benchmark_split']})")
    axis.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
