"""
The models' answers to the benchmark's prompts: in batches through the transformers backend, all in flight (up to the
server's `max_concurrency`) through an endpoint.
"""

import gc
import logging

from .evaluation_config import BenchmarkEvaluationConfig


logger = logging.getLogger(__name__)


def generator_spec(model: str, config: BenchmarkEvaluationConfig) -> dict:
    """
    The backend mapping that answers for `model`: the transformers backend, or `config.generator`'s backend, with the
    stage's batch size, length limit, decoding settings and seed (what `eval_results.json` records of them).
    """
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
    return {**defaults, **spec}


def build_benchmark_generator(model: str, config: BenchmarkEvaluationConfig):
    """The [`TextGenerator`] answering for `model` (see [`generator_spec`])."""
    from ..backends.roles import build_generator

    return build_generator("generator", generator_spec(model, config))


def generate_responses(model: str, prompts: list[str], config: BenchmarkEvaluationConfig) -> list[str | None]:
    """
    Answers `prompts` with `model` in batches; returns the responses, `None` for a failed query (the caller scores it
    as `""`, which follows no instruction, as lm-eval counts an empty response). The model is freed afterwards.
    """
    import torch
    from tqdm.auto import tqdm

    generator = build_benchmark_generator(model, config)
    if getattr(generator, "max_concurrency", None) is not None:
        # An endpoint gets every prompt in one call: a new request starts as soon as one of its `max_concurrency`
        # slots frees, instead of each chunk waiting for its slowest answer while the server idles
        step = max(1, len(prompts))
    else:
        step = config.batch_size * 4  # a few batches per call: progress without breaking the length-sorted batching
    responses = []
    for start in tqdm(range(0, len(prompts), step), desc=f"Generating ({model})", unit="batch"):
        responses += [generation.text for generation in generator.generate(list(prompts[start : start + step]))]
    if responses and all(response is None for response in responses):
        last_error = getattr(generator, "last_error", None)
        raise RuntimeError(
            f"Every one of the {len(responses)} queries to {model} ({getattr(generator, 'endpoint', 'local model')}) "
            f"failed{f'; last error: {last_error}' if last_error else ''}. Its scores would measure the failures, so "
            "none are written. Once it answers, run the same command again (`resume` keeps the models already done)."
        )
    del generator
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    num_failed = sum(response is None for response in responses)
    if num_failed:
        logger.warning(f"{num_failed} queries to {model} failed; their empty responses follow no instruction.")
    return responses
