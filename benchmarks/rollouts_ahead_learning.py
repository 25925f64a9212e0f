"""
Does a PPO policy trained with rollouts ahead (`rollouts_ahead: k`: the next k rollouts are played while PPO trains on
this one, by weights k updates old) learn as well as one trained on-policy, over a run long enough to learn?

The quickstart recipe (`recipes/quickstart/policy.yaml`: the default operations and rewards, `max_operations` 6)
trains for `--max_steps` steps (400: where `benchmarks/query_efficiency.py` trains it) through the CLI, as a user runs
it, with its rewriter on an inference server: a local OpenAI-compatible server (the tests' `OpenAIServer`) whose
answers are the rules engine's rewrites (`tests/trainer/rules_world.py`), so that a run costs minutes, not GPU-hours;
the reviewer is the rules engine. (A server sees an operation and an instruction, not the episode: its rewrites carry
no history or constraints, so this world is easier than the in-process rules engine's and its numbers are not
query_efficiency's.) Each PPO seed (`--ppo_seeds`) trains once on-policy and once per `--rollouts_ahead` value, from
the same initial weights and with the same seed: the runs differ only in which weights play each rollout. (A rollout
ahead's weights are fixed by the schedule, not by the server's timing, so the server's latency does not change what
is learned; `--latency` only makes the overlap real.)

The policy: `--policy_model tiny` (the default) is the tests' 2-layer, 32-wide BERT with a word-level tokenizer
trained on the quickstart seeds (`tests/tiny_models.py`), 8-18 minutes a training on 2 CPU cores; `minilm` is the
recipe's all-MiniLM-L6-v2, what a user trains, which on 2 CPU cores took 3960 s for one training (run it on a GPU).
The novelty reward embeds with MiniLM either way.

Then every policy plays one episode per *held-out* seed (`instrl_trl.data.load_heldout_seeds`, never trained or
tuned on), greedy, through the same server and rules reviewer, in the loop of `benchmarks/query_efficiency.py`
(`instrl_trl.generation.policy_evaluation`), beside Evol-Instruct's `uniform` as a floor. A 400-step PPO run is
chaotic (one seed of three never goes deep in query_efficiency's table), so single seeds say little: the comparison
is pooled over the seeds (all queries over all instructions of 3+ evolutions), and per seed beside it.

Printed: each training's wall time and requests; the held-out tables; per seed and `k`, the k-ahead policy's queries
per kept instruction and per instruction of 3+ evolutions over the on-policy policy's of the same seed; last, per `k`,
the pooled ratio of queries per instruction of 3+ evolutions (k ahead / on-policy; below 1 is better).

    python benchmarks/rollouts_ahead_learning.py [--max_steps 400] [--ppo_seeds 42 43 44] [--rollouts_ahead 1 3]
        [--policy_model tiny|minilm] [--num_seeds N] [--latency 0.02]
"""

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for the tests' server

import yaml
from query_efficiency import POLICY_RECIPE, load_ppo_policy, print_tables, train  # benchmarks/ is on sys.path

from instrl_trl.backends.costs import cost_per, format_number, ratio_label
from instrl_trl.backends.roles import build_role
from instrl_trl.backends.rules import RulesReviewer
from instrl_trl.data import load_heldout_seeds
from instrl_trl.generation.policies import baseline_policy
from instrl_trl.generation.policy_evaluation import PolicyEvaluation, evaluate_policy, evaluation_setup
from instrl_trl.operations import build_operation_library
from tests.backends.openai_server import OpenAIServer
from tests.tiny_models import build_tiny_policy_backbone
from tests.trainer.rules_world import rules_world


MIN_EVOLUTIONS = 3
MAX_CONCURRENCY = 32


def policy_name(key: tuple[int, int] | str) -> str:
    """A trained policy's name from its (PPO seed, rollouts ahead); a baseline's is its own."""
    if isinstance(key, str):
        return "uniform (Evol-Instruct)" if key == "uniform" else key
    seed, ahead = key
    return f"PPO seed {seed}, " + ("on-policy" if ahead == 0 else f"{ahead} rollouts ahead")


def pooled_queries_per_deep_instruction(evaluations: list[PolicyEvaluation]) -> float:
    queries = sum(evaluation.costs.num_queries for evaluation in evaluations)
    deep = sum(evaluation.costs.num_deep_instructions for evaluation in evaluations)
    return cost_per(queries, deep)


def ratio(value: float, reference: float) -> float:
    if math.isinf(value) and math.isinf(reference):
        return math.nan
    return value / reference if reference else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--max_steps", type=int, default=400, help="PPO steps of every training.")
    parser.add_argument("--ppo_seeds", type=int, nargs="+", default=[42, 43, 44], help="Random seeds of training.")
    parser.add_argument("--rollouts_ahead", type=int, nargs="+", default=[1, 3], help="Values of `rollouts_ahead` "
                        "trained beside on-policy (0).")  # fmt: skip
    parser.add_argument("--policy_model", choices=["tiny", "minilm"], default="tiny", help="The policy's "
                        "backbone: the tests' tiny BERT, or the recipe's MiniLM (slow on a CPU).")  # fmt: skip
    parser.add_argument("--num_seeds", type=int, default=None, help="Held-out seeds to play (default: all).")
    parser.add_argument("--latency", type=float, default=0.02, help="Seconds each request waits at the server.")
    cli = parser.parse_args()

    with open(POLICY_RECIPE) as f:
        recipe = yaml.safe_load(f)
    max_operations, run_seed = recipe.get("max_operations", 6), recipe.get("seed", 42)
    operations = build_operation_library()
    heldout_seeds = list(load_heldout_seeds()["instruction"])[: cli.num_seeds]
    aheads = [0, *cli.rollouts_ahead]

    server = OpenAIServer(responder=rules_world(operations), latency=cli.latency)
    with server, tempfile.TemporaryDirectory() as workdir:
        rewriter = {"backend": "endpoint", "model": "rules-world", "base_url": server.base_url,
                    "max_concurrency": MAX_CONCURRENCY}  # fmt: skip
        if cli.policy_model == "tiny":
            recipe["model_name_or_path"] = build_tiny_policy_backbone(f"{workdir}/tiny-backbone")
        policies = {}
        for seed in cli.ppo_seeds:
            for ahead in aheads:
                output_dir = f"{workdir}/ppo-{seed}-{ahead}"
                config = f"{output_dir}.yaml"
                with open(config, "w") as f:
                    yaml.safe_dump({**recipe, "rewriter": rewriter, "rollouts_ahead": ahead}, f)
                before = len(server.requests)
                seconds = train(["train-policy", "--config", config, "--max_steps", str(cli.max_steps), "--seed",
                                 str(seed), "--output_dir", output_dir, "--save_strategy", "no"])  # fmt: skip
                print(  # noqa: T201
                    f"PPO training, seed {seed}, rollouts_ahead {ahead}: {cli.max_steps} steps in {seconds:.0f} s, "
                    f"{len(server.requests) - before} requests"
                )
                policies[seed, ahead] = load_ppo_policy(output_dir, operations, recipe)

        setup = evaluation_setup(build_role("rewriter", rewriter), RulesReviewer(), max_operations, run_seed)
        evaluations = {
            key: evaluate_policy(policy, setup, heldout_seeds, None, 32, MIN_EVOLUTIONS)
            for key, policy in policies.items()
        }
        uniform = baseline_policy("uniform", operations)
        evaluations["uniform"] = evaluate_policy(uniform, setup, heldout_seeds, None, 32, MIN_EVOLUTIONS)

    print(  # noqa: T201
        f"\n{len(heldout_seeds)} held-out seeds, one episode each, greedy; policy: {cli.policy_model}, "
        f"{cli.max_steps} PPO steps; rewriter: the rules engine behind a server, reviewer: the rules engine; "
        f"max_operations {max_operations}, run seed {run_seed}"
    )
    print_tables({policy_name(key): evaluation for key, evaluation in evaluations.items()}, MIN_EVOLUTIONS)

    kept = ratio_label("queries_per_instruction", MIN_EVOLUTIONS)
    deep = ratio_label("queries_per_deep_instruction", MIN_EVOLUTIONS)
    print()  # noqa: T201
    for seed in cli.ppo_seeds:
        on_policy = evaluations[seed, 0].costs
        for ahead in cli.rollouts_ahead:
            costs = evaluations[seed, ahead].costs
            per_kept = ratio(costs.queries_per_instruction, on_policy.queries_per_instruction)
            per_deep = ratio(costs.queries_per_deep_instruction, on_policy.queries_per_deep_instruction)
            print(  # noqa: T201
                f"seed {seed}, {ahead} rollouts ahead / on-policy: {kept} {format_number(per_kept, 3)}, "
                f"{deep} {format_number(per_deep, 3)}"
            )
    reference = pooled_queries_per_deep_instruction([evaluations[seed, 0] for seed in cli.ppo_seeds])
    for ahead in cli.rollouts_ahead:
        pooled = pooled_queries_per_deep_instruction([evaluations[seed, ahead] for seed in cli.ppo_seeds])
        print(  # noqa: T201
            f"{ahead} rollouts ahead / on-policy, {deep}, pooled over {len(cli.ppo_seeds)} training seeds "
            f"({format_number(pooled)} / {format_number(reference)}): {format_number(ratio(pooled, reference), 3)}"
        )


if __name__ == "__main__":
    main()
