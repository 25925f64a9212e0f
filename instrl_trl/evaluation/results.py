"""
What the `evaluate` stage writes for each model: `eval_results.json` (the run's settings, then each benchmark's
scores under `benchmarks`) and a per-prompt `predictions.jsonl` (each line names its benchmark).
"""

import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence

from datasets import Dataset

from ..metrics.scoring import RowResult
from ..runs.atomic import atomic_open, write_json_atomically
from .benchmark_rows import BenchmarkSpec
from .evaluation_config import BenchmarkEvaluationConfig
from .harness import harness_settings


logger = logging.getLogger(__name__)

RESULTS_FILE = "eval_results.json"
PREDICTIONS_FILE = "predictions.jsonl"


def model_output_dirs(models: list[str], output_dir: str) -> list[str]:
    """One folder per model under `output_dir`: a local folder's name, or a Hub id with `/` as `--`."""
    names = []
    for model in models:
        name = os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model.replace("/", "--")
        name = re.sub(r"[^\w.-]", "_", name) or "model"
        names.append(name if name not in names else f"{name}-{len(names)}")
    return [os.path.join(output_dir, name) for name in names]


def benchmark_split_name(config: BenchmarkEvaluationConfig, num_samples: int) -> str:
    """The split as evaluated, e.g. `train[:10]` when `max_samples` cut it."""
    cut = config.max_samples is not None and num_samples == config.max_samples
    return f"{config.benchmark_split}[:{num_samples}]" if cut else config.benchmark_split


def run_settings(model: str, config: BenchmarkEvaluationConfig) -> dict:
    """
    How the answers were produced, stored at the top of `eval_results.json` (see
    [`~instrl_trl.evaluation.harness.harness_settings`]); `resume` reuses results only when they are all the same.
    """
    return harness_settings(model, config)


def is_results_file(entry: str) -> bool:
    """Whether a `models` entry is an earlier `eval_results.json` (shown side by side, not evaluated again)."""
    return entry.endswith(".json") and os.path.isfile(entry)


def read_results_file(path: str, benchmark_names: list[str]) -> dict:
    """
    Reads an earlier run's `eval_results.json`; raises a `ValueError` naming the fix when it is not one, or lacks one
    of `benchmark_names` (the benchmarks of this run, which the side-by-side table compares).
    """
    try:
        with open(path, encoding="utf-8") as file:
            results = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"`models` entry {path!r} is not a readable `{RESULTS_FILE}`: {error}.") from None
    missing = [name for name in benchmark_names if name not in (results.get("benchmarks") or {})]
    if not isinstance(results, dict) or "model" not in results or missing:
        raise ValueError(
            f"`models` entry {path!r} is a JSON file, read as an earlier `{RESULTS_FILE}` to compare, but it "
            f"{'has no results of ' + ', '.join(missing) if missing else 'is not one'}. Pass the `{RESULTS_FILE}` of "
            "an evaluation of the same `benchmark` entries, or a model to evaluate."
        )
    return results


def benchmark_settings(
    spec: BenchmarkSpec, config: BenchmarkEvaluationConfig, num_samples: int, num_failed: int
) -> dict:
    """Which rows one benchmark's scores are over, stored beside them under `benchmarks` in `eval_results.json`."""
    return {
        "benchmark": spec.dataset,
        "benchmark_type": spec.benchmark_type,
        "benchmark_config": config.benchmark_config,
        "benchmark_split": benchmark_split_name(config, num_samples),
        "num_samples": num_samples,
        "num_failed_generations": num_failed,
    }


def _drop_nulls(kwargs: Mapping | None) -> dict:
    return {name: value for name, value in (kwargs or {}).items() if value is not None}


def prediction_rows(
    name: str, responses: Sequence[str], benchmark: Dataset, row_results: Sequence[RowResult]
) -> list[dict]:
    """
    One JSON-ready row per prompt of the benchmark `name`: the row's columns, the response and the verdicts already
    computed for it.
    """
    rows = []
    for response, row, result in zip(responses, benchmark, row_results, strict=True):
        # Unused arguments (null in IFEval and IFBench rows) are left out; a falsy one such as IFBench's `0.0` stays
        kwargs = [_drop_nulls(k) if isinstance(k, Mapping | None) else k for k in row["kwargs"]]
        out = {"benchmark": name, "key": row["key"], "prompt": row["prompt"], "response": response}
        out.update(instruction_id_list=row["instruction_id_list"], kwargs=kwargs)
        if result.verdict is None:
            out.update(skipped=result.reason)
        else:
            verdict = result.verdict
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
    # A score over no row is NaN, which is not JSON: written as null
    write_json_atomically(path, _nan_to_none(results), ensure_ascii=False, allow_nan=False)
    logger.info(f"Results of {results['model']} written to {path}.")
    return path


def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(item) for item in value]
    return value


def write_predictions(folder: str, rows: list[dict]) -> str:
    """Writes one JSON line per prompt (see [`prediction_rows`]) to `folder/predictions.jsonl`; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, PREDICTIONS_FILE)
    with atomic_open(path) as file:
        file.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return path
