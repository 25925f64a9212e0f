"""The paper's general benchmarks (ARC, HellaSwag, MMLU, TruthfulQA) through `lm_eval.simple_evaluate`."""

import functools
import logging

from huggingface_hub import EvalResult

from ..models.builtin import resolve_model_name
from .evaluation_config import BenchmarkEvaluationConfig, parse_lm_eval_task


logger = logging.getLogger(__name__)


def check_lm_eval_tasks(task_specs: list[str]) -> None:
    """
    Loads each lm-eval task (its data included) before any model is loaded, so that an unknown task or unreachable
    data fails at once; the error names the task.
    """
    task_manager = _lm_eval_task_manager()
    for spec in task_specs:
        name, _ = parse_lm_eval_task(spec)
        try:
            task_manager.load([name])
        except KeyError as error:
            raise ValueError(f"`lm_eval_tasks`: {name!r} is not an lm-eval task ({error}).") from None
        except Exception as error:  # every loading failure (connection, missing repo, ...) gets the same advice
            raise RuntimeError(
                f"`lm_eval_tasks`: the data of the lm-eval task {name!r} could not be loaded "
                f"({type(error).__name__}: {error}). lm-eval reads it from the Hub: it must be reachable (check "
                "`HF_ENDPOINT` and your connection) or already in the `datasets` cache (run once online). Remove the "
                "task from `lm_eval_tasks` to evaluate offline."
            ) from error


@functools.cache
def _lm_eval_task_manager():
    # Indexing lm-eval's task folder takes seconds: do it once for the check and the runs
    from ..constraints import ensure_punkt_tab

    ensure_punkt_tab()  # lm-eval's IFEval task imports nltk data when the task index is built
    from lm_eval.tasks import TaskManager

    return TaskManager()


def run_lm_eval(model: str, config: BenchmarkEvaluationConfig) -> dict[str, dict]:
    """
    Runs `config.lm_eval_tasks` on `model` with lm-eval's `hf` model (loaded once for all tasks), each task with its
    own few-shot count; returns task -> `{"dataset", "num_fewshot", "metrics": {metric: value}}`.
    """
    import lm_eval
    from lm_eval.api.registry import get_model

    if config.generator is not None:
        raise ValueError("`lm_eval_tasks` needs a local transformers model; unset `generator` to run them.")
    from accelerate import PartialState

    # lm-eval's `hf` model defaults to `cuda`, even on a machine without one
    pretrained = resolve_model_name(model)
    model_args = f"pretrained={pretrained},dtype={config.dtype or 'auto'},device={PartialState().device}"
    lm = get_model("hf").create_from_arg_string(model_args, {"batch_size": config.batch_size})
    task_manager = _lm_eval_task_manager()
    results = {}
    for spec in config.lm_eval_tasks:
        name, num_fewshot = parse_lm_eval_task(spec)
        output = lm_eval.simple_evaluate(
            model=lm, tasks=[name], num_fewshot=num_fewshot, task_manager=task_manager, random_seed=config.seed
        )
        for task, metrics in output["results"].items():
            task_config = output.get("configs", {}).get(task, {})
            results[task] = {
                "dataset": task_config.get("dataset_path", task),
                "dataset_config": task_config.get("dataset_name"),
                "split": task_config.get("test_split") or task_config.get("validation_split"),
                "num_fewshot": output.get("n-shot", {}).get(task, num_fewshot),
                "metrics": {
                    key.split(",")[0]: value
                    for key, value in metrics.items()
                    if "," in key and "_stderr" not in key and isinstance(value, int | float)
                },
            }
    return results


def lm_eval_to_eval_results(lm_eval_results: dict[str, dict]) -> list[EvalResult]:
    """The lm-eval scores of [`run_lm_eval`] as [`~huggingface_hub.EvalResult`]s, one per task and metric."""
    return [
        EvalResult(
            task_type="text-generation",
            task_name="Text Generation",
            dataset_type=task["dataset"],
            dataset_name=name,
            dataset_config=task["dataset_config"],
            dataset_split=task["split"],
            dataset_args={"num_few_shot": task["num_fewshot"]} if task["num_fewshot"] is not None else None,
            metric_type=metric,
            metric_value=round(float(value), 4),
            source_name="lm-evaluation-harness",
            source_url="https://github.com/EleutherAI/lm-evaluation-harness",
        )
        for name, task in lm_eval_results.items()
        for metric, value in task["metrics"].items()
    ]
