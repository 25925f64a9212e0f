"""
Tokens per second of [`TransformersGenerator`]: batched generation (batch 16) against one prompt at a time.

Both sides run the same randomly initialized Llama (hidden 256, 4 layers, built here with the package's tiny-model
builder `instrl_trl.models.tiny`; nothing is downloaded) on the same 64 prompts, greedy, with
`min_new_tokens == max_new_tokens` so that every prompt gets exactly as many new tokens on both sides. Each side is
warmed up once, then timed `--repeats` times (alternating sides), keeping its best run. Printed last: the ratio
batched / sequential (target >= 4x on 2 CPU cores).

    python benchmarks/batched_generation.py [--num_prompts 64] [--batch_size 16] [--max_new_tokens 32] [--repeats 3]
"""

import argparse
import tempfile
import time

import torch
from transformers.utils.logging import disable_progress_bar

from instrl_trl.backends.transformers import TransformersGenerator
from instrl_trl.models.tiny import build_tiny_causal_lm, training_corpus


def tokens_per_second(generator: TransformersGenerator, prompts: list[str], max_new_tokens: int) -> float:
    kwargs = {"max_new_tokens": max_new_tokens, "min_new_tokens": max_new_tokens}
    start = time.perf_counter()
    generations = generator.generate(prompts, **kwargs)
    seconds = time.perf_counter() - start
    num_tokens = sum(generation.usage.completion_tokens for generation in generations)
    if num_tokens != len(prompts) * max_new_tokens:
        raise RuntimeError(f"Expected {len(prompts) * max_new_tokens} new tokens, got {num_tokens}.")
    return num_tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--num_prompts", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--num_hidden_layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per side, alternated; the best is kept.")
    cli = parser.parse_args()
    disable_progress_bar()

    prompts = training_corpus()[: cli.num_prompts]
    with tempfile.TemporaryDirectory() as model_dir:
        build_tiny_causal_lm(
            model_dir, hidden_size=cli.hidden_size, num_hidden_layers=cli.num_hidden_layers, num_attention_heads=4
        )
        batched_generator = TransformersGenerator(model_dir, batch_size=cli.batch_size)
        sequential_generator = TransformersGenerator(model_dir, batch_size=1)
        generators = {"batched": batched_generator, "sequential": sequential_generator}
        for generator in generators.values():  # warm-up
            generator.generate(prompts[: cli.batch_size], max_new_tokens=cli.max_new_tokens)
        # Alternated, best of `repeats`: a load spike on a shared machine then slows one run, not one side
        best = dict.fromkeys(generators, 0.0)
        for _ in range(cli.repeats):
            for name, generator in generators.items():
                best[name] = max(best[name], tokens_per_second(generator, prompts, cli.max_new_tokens))
    batched, sequential = best["batched"], best["sequential"]

    setting = f"{len(prompts)} prompts x {cli.max_new_tokens} new tokens, {torch.get_num_threads()} torch threads"
    print(f"{setting}, best of {cli.repeats} runs")  # noqa: T201
    print(f"batched (batch {cli.batch_size}): {batched:.0f} tokens/s")  # noqa: T201
    print(f"sequential (batch 1): {sequential:.0f} tokens/s")  # noqa: T201
    print(f"batched / sequential: {batched / sequential:.1f}x")  # noqa: T201


if __name__ == "__main__":
    main()
