"""
How a model's answers were produced, recorded beside its scores: small models' IFEval and IFBench numbers move more
with the harness (chat template, system prompt, decoding, length limit, stop strings, reasoning left in or cut) than
with the model, so a score without them cannot be compared. Two evaluations side by side say where they differ.
"""

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .evaluation_config import BenchmarkEvaluationConfig
from .responses import generator_spec


# Distribution names whose versions change how answers are produced or scored
HARNESS_PACKAGES = ("transformers", "trl", "lm-eval", "instrl-trl", "torch")
# The settings two evaluations must share for their scores to be compared as they stand, in the order printed
COMPARED_SETTINGS = (
    "backend",
    "chat_template",
    "chat_template_sha256",
    "system_prompt",
    "decoding",
    "max_new_tokens",
    "generation_kwargs",
    "stop_strings",
    "reasoning_stripped",
    "seed",
    "versions",
)
COMPARED_BENCHMARK_SETTINGS = ("benchmark", "benchmark_split", "num_samples")


def package_versions() -> dict[str, str]:
    """The installed version of each of [`HARNESS_PACKAGES`] (`"not installed"` when absent)."""
    versions = {}
    for name in HARNESS_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def chat_template_of(model: str, backend: str) -> tuple[str, str | None]:
    """
    Where `model`'s prompts get their chat template, and the template's sha256: the tokenizer's own template (what the
    transformers backend applies), none (the prompt is sent as raw text), or the endpoint server's (not known here).
    """
    if backend != "transformers":
        return "applied by the endpoint server (not known here)", None
    from transformers import AutoTokenizer

    from ..models.builtin import resolve_model_name

    template = AutoTokenizer.from_pretrained(resolve_model_name(model)).chat_template
    if template is None:
        return "none: the prompt is sent as raw text", None
    # A tokenizer may hold several named templates (a dict); the digest covers all of them
    text = template if isinstance(template, str) else json.dumps(template, sort_keys=True)
    return "the model's tokenizer", hashlib.sha256(text.encode("utf-8")).hexdigest()


def decoding(backend: str, generation_kwargs: dict[str, Any]) -> str:
    """`"greedy"` or `"sampling (...)"`, as the backend reads `generation_kwargs` (greedy unless they say so)."""
    if backend == "transformers":
        sampling = bool(generation_kwargs.get("do_sample", False)) and generation_kwargs.get("temperature") != 0
    else:  # chat-completions servers sample when `temperature > 0` (the endpoint backend's default is 0)
        sampling = (generation_kwargs.get("temperature") or 0) > 0
    if not sampling:
        return "greedy"
    knobs = {key: generation_kwargs[key] for key in ("temperature", "top_p", "top_k") if key in generation_kwargs}
    return f"sampling ({', '.join(f'{key}={value}' for key, value in knobs.items()) or 'the model defaults'})"


def harness_settings(model: str, config: BenchmarkEvaluationConfig) -> dict[str, Any]:
    r"""
    The settings that produced `model`'s answers, for `eval_results.json` and the card: `backend`, `chat_template`
    (where it comes from) and `chat_template_sha256`, `system_prompt` (`None`: each prompt is sent alone as one user
    message), `decoding`, `max_new_tokens`, `generation_kwargs`, `stop_strings` (besides the end-of-sequence token),
    `reasoning_stripped` (`False`: responses are scored as generated), `seed` and `versions` ([`package_versions`]).
    """
    spec = generator_spec(model, config)
    backend = spec["backend"]
    generation_kwargs = dict(spec.get("generation_kwargs") or {})
    source, digest = chat_template_of(model, backend)
    stop = generation_kwargs.get("stop_strings" if backend == "transformers" else "stop") or []
    return {
        "model": model,
        "backend": backend,
        "chat_template": source,
        "chat_template_sha256": digest,
        "system_prompt": None,
        "decoding": decoding(backend, generation_kwargs),
        "max_new_tokens": config.max_new_tokens,
        "generation_kwargs": config.generation_kwargs or {},
        "stop_strings": [stop] if isinstance(stop, str) else list(stop),
        "reasoning_stripped": False,
        "seed": config.seed,
        "versions": package_versions(),
    }


def model_label(model: str) -> str:
    """How tables name a `models` entry: a local folder by its name, an earlier results file by its folder's."""
    if model.endswith(".json") and os.path.isfile(model):
        folder = os.path.dirname(os.path.abspath(model))  # <output_dir>/<model>/eval_results.json
        return f"{os.path.basename(os.path.dirname(folder))}/{os.path.basename(folder)} (earlier results)"
    return os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model


def _show(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"sha256:{value[:12]}"
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


def settings_differences(results: dict[str, dict]) -> list[str]:
    r"""
    The settings in which the evaluations of `results` (model -> its `eval_results.json` content) differ, one a line:
    `"max_new_tokens: model-a=8, model-b=16"`. Package versions are compared one by one, and each benchmark's rows
    (`benchmark`, split, number of prompts) too. An empty list when they were all produced alike.
    """

    labels = [model_label(model) for model in results]
    if len(set(labels)) < len(labels):  # two entries with one name: the entries themselves are unique
        labels = list(results)

    def values(read) -> dict[str, Any]:
        return {label: read(model_results) for label, model_results in zip(labels, results.values(), strict=True)}

    rows: list[tuple[str, dict[str, Any]]] = []
    for key in COMPARED_SETTINGS:
        if key == "versions":
            names = sorted({name for r in results.values() for name in (r.get("versions") or {})})
            rows += [(f"version of {n}", values(lambda r, n=n: (r.get("versions") or {}).get(n))) for n in names]
        else:
            rows.append((key, values(lambda r, key=key: r.get(key))))
    names = sorted({name for r in results.values() for name in r.get("benchmarks", {})})
    for name in names:
        for key in COMPARED_BENCHMARK_SETTINGS:
            rows.append((f"{name} {key}", values(lambda r, n=name, k=key: r.get("benchmarks", {}).get(n, {}).get(k))))
    lines = []
    for key, by_model in rows:
        if len({json.dumps(value, sort_keys=True) for value in by_model.values()}) > 1:
            shown = ", ".join(f"{model}={_show(value)}" for model, value in by_model.items())
            lines.append(f"{key}: {shown}")
    return lines


def harness_card_lines(results: dict[str, Any]) -> list[str]:
    """The card's list of how the answers were produced, from one model's `eval_results.json` content."""
    digest = results.get("chat_template_sha256")
    versions = ", ".join(f"{name} {value}" for name, value in (results.get("versions") or {}).items())
    return [
        f"- Backend: {results.get('backend')}",
        f"- Chat template: {results.get('chat_template')}" + (f" (sha256 `{digest}`)" if digest else ""),
        f"- System prompt: {results.get('system_prompt') or 'none (each prompt alone, as one user message)'}",
        f"- Decoding: {results.get('decoding')}, seed {results.get('seed')}",
        f"- max_new_tokens: {results.get('max_new_tokens')}",
        f"- Generation settings: `{json.dumps(results.get('generation_kwargs') or {}, sort_keys=True)}`",
        f"- Stop strings: {', '.join(map(repr, results.get('stop_strings') or [])) or 'none (end of sequence only)'}",
        f"- Reasoning stripped before scoring: {'yes' if results.get('reasoning_stripped') else 'no'}",
        f"- Versions: {versions}",
    ]
