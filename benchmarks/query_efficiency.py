"""
Every operation policy in one table, measured by one loop: does the trained PPO policy buy 3+-evolution
instructions with fewer LLM queries and tokens than the policies that need no training, on seeds it never saw?

The PPO policy is trained with the quickstart recipe (`recipes/quickstart/policy.yaml`, the rules engine, the
quickstart seeds, `--max_steps` steps), once per random seed of training (`--ppo_seeds`, by default the recipe's
seed and the two after it: a 400-step PPO run is chaotic, float rounding alone sends it to another policy, so one run
says little), and the instructor with its quickstart recipe
(`recipes/quickstart/instructor.yaml`, GRPO, `--instructor_steps` steps), both on the training seeds. Then every
policy plays one episode per *held-out* seed
(`instrl_trl.data.load_heldout_seeds`, another source, never used for training or tuning) through the one interface
every policy implements (`GenerationPolicy.evolve`), measured by `instrl_trl.generation.policy_evaluation` with the
same rules rewriter and reviewer, `max_operations` and run seed: an eliminated rewrite ends the episode, `stop` ends
it for free. The policies that need no training:

- `uniform`: Evol-Instruct's choice, a uniformly random operation each round for `max_operations` rounds;
- `no_repeat`: a random operation not applied yet in the episode, then `stop`;
- the best constant sequence: the fixed sequence of up to `max_operations` operations with the fewest queries per
  3+-evolution instruction on the *training* seeds, found by exact search;
- `bandit`: Thompson sampling over operations per question or task, learning from the reviewer's verdicts as it plays
  the held-out seeds (no training stage); `bandit:blind` is the same without the feature.

The first table gives per policy the queries, the tokens (the rules engine counts words), the accepted rate, the kept
and 3+-evolution instructions, the distinct operation sequences and the novelty of the kept instructions; the second
its ratios (`instrl_trl.backends.costs`); a third the same loop at a fixed query budget. Then, per PPO seed,
the PPO policy's queries (and tokens) per 3+-evolution instruction over the best of {best constant sequence, bandit,
no_repeat, uniform}; the last line is their median.

    python benchmarks/query_efficiency.py [--max_steps 400] [--ppo_seeds 42 43 44] [--policy FOLDER ...]
                                          [--instructor FOLDER] [--num_seeds N] [--sequence A,B,C]
"""

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time

import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from instrl_trl.backends.costs import RATIO_LABELS, format_number, ratio_label
from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
from instrl_trl.data import load_heldout_seeds, load_quickstart_seeds
from instrl_trl.embeddings import SentenceEmbedder
from instrl_trl.environment import InstructionEnv
from instrl_trl.generation.policies import PPOPolicy, baseline_policy, load_generation_policy
from instrl_trl.generation.policy_evaluation import PolicyEvaluation, evaluate_policy, evaluation_setup
from instrl_trl.operations import build_operation_library
from instrl_trl.policies.constant_sequences import best_constant_sequence


POLICY_RECIPE = "recipes/quickstart/policy.yaml"
INSTRUCTOR_RECIPE = "recipes/quickstart/instructor.yaml"
PPO, INSTRUCTOR = "PPO policy (greedy)", "instructor (GRPO, sampled)"
# The baselines the PPO policy is held to (issue 23): the best of them is the reference of the last line
REFERENCES = ("best constant sequence", "bandit", "no_repeat", "uniform (Evol-Instruct)")


def load_ppo_policy(policy_dir: str, operations, recipe: dict) -> PPOPolicy:
    """A trained PPO policy's folder as the generation policy that plays it, with the recipe's state length."""
    model = AutoModelForSequenceClassification.from_pretrained(policy_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    return PPOPolicy(model, tokenizer, operations.select(labels[:-1]), max_length=recipe.get("max_state_length", 64))


def train(command: list[str]) -> float:
    """Runs a training stage through the CLI, as a user would; returns the seconds it took."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "instrl_trl.cli", *command], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def summary_row(name: str, evaluation: PolicyEvaluation) -> str:
    costs = evaluation.costs
    prompt, completion = sum(costs.prompt_tokens.values()), sum(costs.completion_tokens.values())
    return (
        f"| {name} | {evaluation.num_episodes} | {costs.num_queries} | {prompt} + {completion} | "
        f"{format_number(costs.accepted_rate, 3)} | {costs.num_evolutions} | {costs.num_instructions} | "
        f"{costs.num_deep_instructions} | {evaluation.num_sequences} | {format_number(evaluation.mean_novelty, 3)} |"
    )


def ratio_row(name: str, evaluation: PolicyEvaluation) -> str:
    return f"| {name} | " + " | ".join(format_number(value) for value in evaluation.costs.ratios().values()) + " |"


def print_tables(evaluations: dict[str, PolicyEvaluation], min_evolutions: int) -> None:
    print(  # noqa: T201
        "| policy | episodes | queries | tokens (prompt + completion) | accepted rate | evolutions | kept "
        f"| {min_evolutions}+ evolutions | distinct sequences | mean novelty |\n" + "|---" * 10 + "|"
    )
    for name, evaluation in evaluations.items():
        print(summary_row(name, evaluation))  # noqa: T201
    labels = [ratio_label(name, min_evolutions) for name in RATIO_LABELS]
    print("\n| policy | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels))  # noqa: T201
    for name, evaluation in evaluations.items():
        print(ratio_row(name, evaluation))  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--max_steps", type=int, default=400, help="PPO steps (the recipe's own is a short demo).")
    parser.add_argument("--instructor_steps", type=int, default=20, help="GRPO steps of the instructor.")
    parser.add_argument("--ppo_seeds", type=int, nargs="+", default=None, help="Random seeds of the PPO "
                        "trainings, one policy each (default: the recipe's seed and the two after it).")  # fmt: skip
    parser.add_argument("--policy", nargs="+", default=None, help="Already trained PPO policy folders, one per "
                        "seed of `--ppo_seeds`, in its order: skips their training.")  # fmt: skip
    parser.add_argument("--instructor", default=None, help="An already trained instructor folder: skips its training.")
    parser.add_argument("--num_seeds", type=int, default=None, help="Held-out seeds to play (default: all).")
    parser.add_argument("--sequence", default=None, help="The best constant sequence (`a,b,c`) an earlier run "
                        "found on the training seeds: skips the search; its score is recomputed.")  # fmt: skip
    parser.add_argument("--min_evolutions", type=int, default=3, help="Evolutions that make an instruction deep.")
    parser.add_argument("--query_budget", type=int, default=3000, help="Budget of the fixed-budget table.")
    cli = parser.parse_args()

    with open(POLICY_RECIPE) as f:
        recipe = yaml.safe_load(f)
    max_operations, run_seed = recipe.get("max_operations", 6), recipe.get("seed", 42)
    ppo_seeds = cli.ppo_seeds or [run_seed, run_seed + 1, run_seed + 2]
    if cli.policy is not None and len(cli.policy) != len(ppo_seeds):
        parser.error(
            f"--policy names {len(cli.policy)} folder(s) for {len(ppo_seeds)} PPO seed(s) "
            f"({' '.join(map(str, ppo_seeds))}): give one folder per seed, in --ppo_seeds' order."
        )
    operations = build_operation_library()
    train_seeds = list(load_quickstart_seeds()["instruction"])
    heldout_seeds = list(load_heldout_seeds()["instruction"])[: cli.num_seeds]

    with tempfile.TemporaryDirectory() as workdir:
        policy_dirs = cli.policy or [f"{workdir}/ppo-{seed}" for seed in ppo_seeds]
        instructor_dir = cli.instructor or f"{workdir}/instructor"
        for seed, policy_dir in zip(ppo_seeds, policy_dirs, strict=True):
            if cli.policy is None:
                steps = str(cli.max_steps)
                seconds = train(["train-policy", "--config", POLICY_RECIPE, "--max_steps", steps, "--seed", str(seed),
                                 "--output_dir", policy_dir, "--save_strategy", "no"])  # fmt: skip
                print(f"PPO policy training ({POLICY_RECIPE}, {cli.max_steps} steps, seed {seed}): {seconds:.0f} s")  # noqa: T201
        if cli.instructor is None:
            steps = str(cli.instructor_steps)
            seconds = train(["train-instructor", "--config", INSTRUCTOR_RECIPE, "--max_steps", steps,
                             "--output_dir", instructor_dir, "--save_strategy", "no"])  # fmt: skip
            print(f"instructor training ({INSTRUCTOR_RECIPE}, {cli.instructor_steps} steps): {seconds:.0f} s")  # noqa: T201
        ppo_policies = {
            f"{PPO.removesuffix(')')}, seed {seed})": load_ppo_policy(policy_dir, operations, recipe)
            for seed, policy_dir in zip(ppo_seeds, policy_dirs, strict=True)
        }
        instructor = load_generation_policy(instructor_dir)

    def rules_env() -> InstructionEnv:
        return InstructionEnv(operations, RulesRewriter(), RulesReviewer(), max_operations, seed=run_seed)

    greedy = evaluation_setup(RulesRewriter(), RulesReviewer(), max_operations, run_seed)
    start = time.perf_counter()
    if cli.sequence is None:
        sequence, score = best_constant_sequence(rules_env, train_seeds, max_operations, cli.min_evolutions)
        found = f"exact search, {time.perf_counter() - start:.0f} s"
    else:
        sequence = tuple(cli.sequence.split(","))
        given = baseline_policy(f"sequence:{cli.sequence}", operations)
        score = evaluate_policy(given, greedy, train_seeds, None, 32, cli.min_evolutions)
        found = "given with --sequence, from an earlier search"
    print(  # noqa: T201
        f"best constant sequence on the {len(train_seeds)} training seeds ({found}): {','.join(sequence)} "
        f"({format_number(score.costs.queries_per_deep_instruction)} queries per deep instruction there)"
    )

    # Each mode plays a fresh policy: the bandit learns online, and starts each mode from nothing
    factories = {
        **{name: (lambda ppo=ppo: ppo) for name, ppo in ppo_policies.items()},
        INSTRUCTOR: lambda: instructor,
        "uniform (Evol-Instruct)": lambda: baseline_policy("uniform", operations),
        "no_repeat": lambda: baseline_policy("no_repeat", operations),
        "best constant sequence": lambda: baseline_policy(f"sequence:{','.join(sequence)}", operations),
        "bandit": lambda: baseline_policy("bandit", operations),
        "bandit:blind (no feature)": lambda: baseline_policy("bandit:blind", operations),
    }
    # The tiny warm-started instructor tends to call `stop` at once when decoding greedily (benchmarks/instructor.py)
    sampled = evaluation_setup(RulesRewriter(), RulesReviewer(), max_operations, run_seed, greedy=False)
    embedder = SentenceEmbedder()
    per_seed, budgeted = {}, {}
    for name, make_policy in factories.items():
        setup = sampled if name == INSTRUCTOR else greedy
        start = time.perf_counter()
        per_seed[name] = evaluate_policy(make_policy(), setup, heldout_seeds, None, 32, cli.min_evolutions, embedder)
        budgeted[name] = evaluate_policy(make_policy(), setup, heldout_seeds, cli.query_budget, 32, cli.min_evolutions)
        print(f"played {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)  # noqa: T201

    print(  # noqa: T201
        f"\n{len(heldout_seeds)} held-out seeds, one episode each; rules rewriter and reviewer (tokens = words), "
        f"max_operations {max_operations}, run seed {run_seed}"
    )
    print_tables(per_seed, cli.min_evolutions)
    print(f"\nthe same loop with a budget of {cli.query_budget} queries (the held-out seeds again and again)")  # noqa: T201
    print_tables(budgeted, cli.min_evolutions)

    deep = "queries_per_deep_instruction"
    best = min(REFERENCES, key=lambda name: getattr(per_seed[name].costs, deep))
    reference = per_seed[best].costs
    label = ratio_label(deep, cli.min_evolutions)
    print()  # noqa: T201
    ratios = []
    for name in ppo_policies:
        trained = per_seed[name].costs
        ratio = trained.queries_per_deep_instruction / reference.queries_per_deep_instruction
        token_ratio = trained.tokens_per_deep_instruction / reference.tokens_per_deep_instruction
        ratios.append(ratio)
        print(  # noqa: T201
            f"{name} / best baseline ({best}), {label}: {format_number(ratio, 3)} "
            f"(tokens: {format_number(token_ratio, 3)})"
            + ("" if not math.isnan(ratio) else " (undefined: neither made such an instruction)")
        )
    median = statistics.median(ratios)
    beating = sum(ratio <= 0.85 for ratio in ratios)
    verdict = "beats" if median <= 0.85 else "does not beat"
    print(  # noqa: T201
        f"PPO policy / best baseline ({best}), {label}, median of {len(ratios)} training seeds: "
        f"{format_number(median, 3)}; the median {verdict} the 0.85x target ({beating} of {len(ratios)} seeds do)"
    )


if __name__ == "__main__":
    main()
