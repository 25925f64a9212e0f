"""
Does a trained operation policy waste fewer queries than the baselines, on seeds it has never seen?

The policy is trained with the quickstart recipe (`recipes/quickstart/policy.yaml`, the rules engine, the quickstart
seeds), then every policy plays one episode per *held-out* seed (`instrl_trl/data/heldout_seeds.jsonl`, another source,
never used for training or tuning) under the same rule and budget: the same environment, `max_operations` steps at
most, an eliminated rewrite ends the episode, a `stop` ends it for free. The baselines:

- `uniform`: Evol-Instruct's choice, a uniformly random operation each round for `max_operations` rounds;
- `no_repeat`: a random operation not applied yet in the episode, then `stop` (a strong cheap heuristic);
- the best constant sequence: the fixed sequence of up to `max_operations` operations with the fewest queries per
  instruction of at least `--min_evolutions` evolutions on the *training* seeds, found by exact search.

The table prints, per policy: queries per accepted instruction (an episode that kept an evolution yields one),
queries per accepted instruction with at least `--min_evolutions` evolutions ("deep"), the accepted rate, the number
of distinct operation sequences, the operation entropy and the mean novelty of the kept instructions. The last line
is the trained policy's queries per deep instruction divided by the best baseline's.

`--rewriter_recipe recipes/smollm2-135m-instruct/generate_transformers.yaml` plays the same policies with that
recipe's rewriter (SmolLM2-135M-Instruct in-process, sampling, seeded; `generate.yaml` needs `instrl-trl serve`
running) and the rules reviewer on `--num_seeds` held-out seeds; the constant
sequence is then the one searched on the rules engine (a search with the LLM would cost thousands of rewrites).

    python benchmarks/query_efficiency.py [--max_steps 400] [--policy FOLDER] [--rewriter_recipe RECIPE --num_seeds 24]
"""

import argparse
import functools
import math
import subprocess
import sys
import tempfile
import time

import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from instrl_trl.backends.roles import build_role
from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
from instrl_trl.data import load_heldout_seeds, load_quickstart_seeds
from instrl_trl.embeddings import SentenceEmbedder
from instrl_trl.environment import STOP_ACTION, InstructionEnv
from instrl_trl.operations import build_operation_library
from instrl_trl.policies.baselines import build_baseline_policy
from instrl_trl.policies.constant_sequences import best_constant_sequence
from instrl_trl.policies.report import PolicyReport, policy_report
from instrl_trl.policy import act


RECIPE = "recipes/quickstart/policy.yaml"


def train_policy(recipe: str, max_steps: int, output_dir: str) -> float:
    """Trains the recipe's policy with the CLI, as a user would; returns the seconds it took."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "instrl_trl.cli", "train-policy", "--config", recipe, "--max_steps",
               str(max_steps), "--output_dir", output_dir, "--save_strategy", "no"]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def row(name: str, report: PolicyReport) -> str:
    def number(value: float, digits: int) -> str:
        return "inf" if math.isinf(value) else "nan" if math.isnan(value) else f"{value:.{digits}f}"

    return (
        f"| {name} | {report.num_queries} | {report.num_instructions} | {number(report.queries_per_instruction, 2)} | "
        f"{report.num_deep_instructions} | {number(report.queries_per_deep_instruction, 2)} | "
        f"{number(report.accepted_rate, 3)} | {report.num_sequences} | {number(report.operation_entropy, 2)} | "
        f"{number(report.mean_novelty, 3)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--recipe", default=RECIPE, help="Policy recipe to train with.")
    parser.add_argument("--max_steps", type=int, default=400, help="PPO steps (the recipe's own is a short demo).")
    parser.add_argument("--policy", default=None, help="An already trained policy folder: skips training.")
    parser.add_argument(
        "--rewriter_recipe", default=None, help="A recipe whose `rewriter` plays instead of the rules."
    )
    parser.add_argument("--num_seeds", type=int, default=None, help="Held-out seeds to play (default: all).")
    parser.add_argument("--min_evolutions", type=int, default=3, help="Evolutions that make an instruction deep.")
    cli = parser.parse_args()

    with open(cli.recipe) as f:
        recipe = yaml.safe_load(f)
    max_operations, run_seed = recipe.get("max_operations", 6), recipe.get("seed", 42)
    operations = build_operation_library()
    action_names = [*operations.names, STOP_ACTION]
    train_seeds = load_quickstart_seeds()["instruction"]
    heldout_seeds = load_heldout_seeds()["instruction"][: cli.num_seeds]

    with tempfile.TemporaryDirectory() as output_dir:
        policy_dir = cli.policy or output_dir
        if cli.policy is None:
            seconds = train_policy(cli.recipe, cli.max_steps, output_dir)
            print(f"policy training ({cli.recipe}, {cli.max_steps} steps): {seconds:.0f} s")  # noqa: T201
        model = AutoModelForSequenceClassification.from_pretrained(policy_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    trained = functools.partial(act, model, tokenizer, max_length=recipe.get("max_state_length", 64), greedy=True)

    def rules_env() -> InstructionEnv:
        return InstructionEnv(operations, RulesRewriter(), RulesReviewer(), max_operations, seed=run_seed)

    start = time.perf_counter()
    sequence, score = best_constant_sequence(rules_env, train_seeds, max_operations, cli.min_evolutions)
    seconds = time.perf_counter() - start
    print(  # noqa: T201
        f"best constant sequence on the {len(train_seeds)} training seeds (exact search, {seconds:.0f} s): "
        f"{','.join(sequence)} ({score.queries_per_deep_instruction:.2f} queries per deep instruction there)"
    )

    rewriter_name = "rules"
    if cli.rewriter_recipe is None:
        make_env = rules_env
    else:
        with open(cli.rewriter_recipe) as f:
            spec = yaml.safe_load(f)["rewriter"]
        rewriter = build_role("rewriter", spec)
        rewriter_name = f"{spec.get('model')} ({spec.get('backend')}, from {cli.rewriter_recipe}), rules reviewer"

        def make_env() -> InstructionEnv:
            return InstructionEnv(operations, rewriter, RulesReviewer(), max_operations, seed=run_seed)

    policies = {
        "trained policy (greedy)": trained,
        "uniform (Evol-Instruct)": build_baseline_policy("uniform", action_names, seed=run_seed),
        "no_repeat heuristic": build_baseline_policy("no_repeat", action_names, seed=run_seed),
        "best constant sequence": build_baseline_policy(f"sequence:{','.join(sequence)}", action_names),
    }
    embedder = SentenceEmbedder()
    reports = {}
    for name, act_fn in policies.items():
        start = time.perf_counter()
        reports[name] = policy_report(make_env, act_fn, heldout_seeds, cli.min_evolutions, embedder)
        print(f"played {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)  # noqa: T201

    deep = f"queries/deep ({cli.min_evolutions}+ evolutions)"
    print(f"\n{len(heldout_seeds)} held-out seeds, rewriter {rewriter_name}, max_operations {max_operations}")  # noqa: T201
    print(  # noqa: T201
        f"| policy | queries | instructions | queries/instruction | deep | {deep} | accepted rate | sequences | "
        "operation entropy (bits) | mean novelty |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")  # noqa: T201
    for name, report in reports.items():
        print(row(name, report))  # noqa: T201
    baselines = {name: report for name, report in reports.items() if not name.startswith("trained")}
    best_name = min(baselines, key=lambda name: baselines[name].queries_per_deep_instruction)
    trained_deep = reports["trained policy (greedy)"].queries_per_deep_instruction
    for name, report in baselines.items():
        ratio = trained_deep / report.queries_per_deep_instruction
        print(f"trained / {name}: {ratio:.3f}")  # noqa: T201
    ratio = trained_deep / baselines[best_name].queries_per_deep_instruction
    print(f"queries per deep instruction, trained policy / best baseline ({best_name}): {ratio:.3f}")  # noqa: T201


if __name__ == "__main__":
    main()
