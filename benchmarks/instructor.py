"""
The LLM instructor (GRPO, tool calls) beside the PPO operation policy and two baselines that need no training.

Both learned policies are trained here, in this run, on the training seeds; then every policy evolves the same
held-out seeds through the generation stage's own policy dispatch (`instrl_trl.generation.policies`), with the same
offline rules rewriter and reviewer, until it has spent the same query budget. Columns: queries per accepted
instruction, depth (accepted evolutions per episode), diversity (distinct operation sequences among the accepted
instructions, and their share). The training columns give the wall time per optimizer step, rollouts included: a GRPO
step of the instructor and a PPO update of the policy. Printed last: the ratio GRPO step / PPO update.

The step counts are small so that it runs in a few minutes on 2 CPU cores: the two learned policies have barely
started to learn, and the table measures the machinery, not what long training reaches.

    python benchmarks/instructor.py [--ppo_steps 4] [--grpo_steps 8] [--query_budget 400] [--max_episodes 160]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
from instrl_trl.backends.accounting import QueryAccounting
from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
from instrl_trl.data import load_quickstart_seeds
from instrl_trl.data.loading import load_dataset_by_name
from instrl_trl.generation.policies import EvolutionSetup, load_generation_policy
from instrl_trl.policy import default_policy_model
from instrl_trl.rewards import get_reward_funcs
from instrl_trl.stages.train_instructor import build_environment_factory, load_instructor_seeds
from instrl_trl.trainer.instructor import InstructorConfig, InstructorTrainer, default_instructor


HELDOUT_FILE = Path(__file__).resolve().parents[1] / "instrl_trl" / "data" / "heldout_seeds.jsonl"
REWARD_FUNCS, REWARD_WEIGHTS = ["information_gain", "elimination", "query_cost"], [1.0, 1.0, 0.25]
MAX_OPERATIONS = 6


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (rollouts included: both trainers collect them inside the step)."""

    def __init__(self):
        self.seconds: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


def split_seeds(num_heldout: int) -> tuple[list[str], list[str], str]:
    """Training and held-out seed instructions, and where the held-out ones come from."""
    quickstart = list(load_quickstart_seeds()["instruction"])
    if HELDOUT_FILE.is_file():
        heldout = list(load_dataset_by_name(str(HELDOUT_FILE))["instruction"])[:num_heldout]
        return quickstart, heldout, f"{HELDOUT_FILE.name} (training: the quickstart seeds)"
    # No held-out file on this branch: the last quickstart seeds are held out, and neither trainer sees them
    source = f"the last {num_heldout} quickstart seeds (training: the other {len(quickstart) - num_heldout})"
    return quickstart[:-num_heldout], quickstart[-num_heldout:], source


def train_ppo(train_seeds: list[str], output_dir: str, steps: int, seed: int) -> tuple[str, list[float]]:
    from datasets import Dataset

    args = InstructionGenerationConfig(
        output_dir=output_dir, learning_rate=2e-4, max_steps=steps, per_device_train_batch_size=16,
        steps_per_generation=2, num_iterations=2, max_state_length=64, max_operations=MAX_OPERATIONS,
        reward_funcs=REWARD_FUNCS, reward_weights=REWARD_WEIGHTS, save_strategy="no", report_to="none",
        logging_steps=steps, seed=seed, disable_tqdm=True, use_cpu=True,
    )  # fmt: skip
    timer = StepTimer()
    trainer = InstructionGenerationTrainer(
        model=default_policy_model(), args=args, train_dataset=Dataset.from_dict({"instruction": train_seeds}),
        callbacks=[timer],
    )  # fmt: skip
    trainer.train()
    trainer.save_model(output_dir)
    return output_dir, timer.seconds


def train_instructor(train_seeds: list[str], output_dir: str, steps: int, seed: int) -> tuple[str, list[float]]:
    import json

    seeds_file = os.path.join(output_dir, "train_seeds.jsonl")
    os.makedirs(output_dir, exist_ok=True)
    with open(seeds_file, "w") as f:
        f.writelines(json.dumps({"instruction": text}) + "\n" for text in train_seeds)
    # The quickstart recipe's settings (recipes/quickstart/instructor.yaml), with the PPO side's step rewards
    args = InstructorConfig(
        output_dir=output_dir, dataset_name=seeds_file, max_steps=steps, learning_rate=1e-4,
        per_device_train_batch_size=4, num_generations=4, max_completion_length=384, max_operations=MAX_OPERATIONS,
        reward_funcs=REWARD_FUNCS, operation_reward_weights=REWARD_WEIGHTS, stop_reward=0.1, save_strategy="no",
        report_to="none", logging_steps=steps, seed=seed, disable_tqdm=True, use_cpu=True,
    )  # fmt: skip
    factory = build_environment_factory(args)
    model = default_instructor(factory.operations, args.task_prompt, num_steps=args.warm_start_steps,
                               learning_rate=args.warm_start_learning_rate)  # fmt: skip
    timer = StepTimer()
    trainer = InstructorTrainer(model=model, args=args, train_dataset=load_instructor_seeds(args),
                                environment_factory=factory, callbacks=[timer])  # fmt: skip
    trainer.train()
    trainer.save_model(output_dir)
    return output_dir, timer.seconds


def measure(policy, heldout: list[str], query_budget: int, max_episodes: int, seed: int) -> dict:
    """
    Evolves the held-out seeds (cycling), one batch of all of them at a time, until `query_budget` queries are spent
    or `max_episodes` episodes are played (a policy that stops at once spends almost nothing per episode).
    """
    batch_size = len(heldout)
    accounting = QueryAccounting()
    reward_funcs = get_reward_funcs(REWARD_FUNCS)
    # Sampled for every policy: the tiny warm-started instructor tends to call `stop` at once when decoding greedily
    setup = EvolutionSetup(RulesRewriter(), RulesReviewer(), accounting, reward_funcs, torch.tensor(REWARD_WEIGHTS),
                           MAX_OPERATIONS, seed, greedy=False, keep_intermediate=True)  # fmt: skip
    num_episodes = num_accepted = position = 0
    sequences = []
    start = time.perf_counter()
    while accounting.total < query_budget and num_episodes < max_episodes:
        batch = list(heldout)
        # Distinct indices per pass, so that a sampling policy draws anew when the seeds come round again
        candidates = policy.evolve(setup, batch, list(range(position, position + batch_size))).candidates
        position += batch_size
        num_episodes += batch_size
        num_accepted += len(candidates)
        sequences.extend(candidate.operations for candidate in candidates)
    queries = accounting.total
    return {
        "queries": queries,
        "episodes": num_episodes,
        "accepted": num_accepted,
        "queries_per_accepted": queries / num_accepted if num_accepted else float("inf"),
        "depth": num_accepted / num_episodes,
        "distinct": len(set(sequences)),
        "distinct_share": len(set(sequences)) / num_accepted if num_accepted else 0.0,
        "seconds": time.perf_counter() - start,
        "capped": accounting.total < query_budget,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--ppo_steps", type=int, default=4, help="PPO optimizer steps (batch 16).")
    parser.add_argument("--grpo_steps", type=int, default=8, help="GRPO steps of the instructor (4 completions).")
    parser.add_argument("--query_budget", type=int, default=400, help="Queries each policy may spend.")
    parser.add_argument("--max_episodes", type=int, default=160, help="Episodes each policy may play at most.")
    parser.add_argument("--num_heldout", type=int, default=40, help="Held-out seeds.")
    parser.add_argument("--sequence", default="add_constraints,concretizing,deepening", help="The fixed sequence.")
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))

    train_seeds, heldout, source = split_seeds(cli.num_heldout)
    with tempfile.TemporaryDirectory() as workdir:
        ppo_dir, ppo_steps = train_ppo(train_seeds, os.path.join(workdir, "ppo"), cli.ppo_steps, cli.seed)
        instructor_dir, grpo_steps = train_instructor(
            train_seeds, os.path.join(workdir, "instructor"), cli.grpo_steps, cli.seed
        )
        policies = {
            "instructor (GRPO)": instructor_dir,
            "PPO policy": ppo_dir,
            "uniform": "uniform",
            f"sequence {cli.sequence}": f"sequence:{cli.sequence}",
        }
        results, num_parameters = {}, {}
        for name, policy in policies.items():
            loaded = load_generation_policy(policy)
            if hasattr(loaded, "model"):
                num_parameters[loaded.kind] = loaded.model.num_parameters()
            results[name] = {
                "kind": loaded.kind,
                **measure(loaded, heldout, cli.query_budget, cli.max_episodes, cli.seed),
            }

    ppo_step, grpo_step = sum(ppo_steps) / len(ppo_steps), sum(grpo_steps) / len(grpo_steps)
    print(  # noqa: T201
        f"held-out seeds: {source}; budget per policy: {cli.query_budget} queries or {cli.max_episodes} episodes "
        "(* = stopped by the episode cap); rules rewriter and reviewer"
    )
    print(  # noqa: T201
        f"small runs for 2 CPU cores: PPO {len(ppo_steps)} updates (batch 16), instructor {len(grpo_steps)} GRPO "
        "steps (1 seed x 4 completions); all policies sampled"
    )
    header = f"{'policy':<48} {'kind':<10} {'queries':>7} {'episodes':>8} {'accepted':>8} {'q/acc':>6} "
    print(header + f"{'depth':>5} {'distinct seqs':>13} {'eval s':>6}")  # noqa: T201
    for name, r in results.items():
        print(  # noqa: T201
            f"{name:<48} {r['kind']:<10} {r['queries']:>7} {r['episodes']:>7}{'*' if r['capped'] else ' '} "
            f"{r['accepted']:>8} "
            f"{r['queries_per_accepted']:>6.2f} {r['depth']:>5.2f} {r['distinct']:>5} ({r['distinct_share']:>4.0%}) "
            f"{r['seconds']:>6.1f}"
        )
    print(  # noqa: T201
        f"wall time per PPO update: {ppo_step:.3f} s (mean of {len(ppo_steps)}; policy "
        f"{num_parameters['ppo'] / 1e6:.1f}M parameters, a rollout of 32 episodes every 4 updates)"
    )
    print(  # noqa: T201
        f"wall time per GRPO step:  {grpo_step:.3f} s (mean of {len(grpo_steps)}; instructor "
        f"{num_parameters['instructor'] / 1e6:.2f}M parameters, 4 tool-calling episodes a step)"
    )
    print(f"wall time per step, GRPO instructor / PPO policy: {grpo_step / ppo_step:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
