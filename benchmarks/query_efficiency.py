"""
Queries per accepted instruction: a trained operation policy against Evol-Instruct's uniform-random operations.

Both spend the same query budget on the same seeds with the same offline rules backend. The policy is trained here
first (a few minutes on 2 CPU cores), from the packaged all-MiniLM-L6-v2 unless `--model` says otherwise. The
baseline follows Evol-Instruct's procedure: `max_operations` rounds, one uniformly random operation a round, a
failed evolution dropped and its instruction kept for the next round. Printed last: the ratio
policy / baseline (target <= 0.5).

    python benchmarks/query_efficiency.py [--max_steps 120] [--query_budget 3000]
"""

import argparse
import tempfile
import time

from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
from instrl_trl.data import load_quickstart_seeds
from instrl_trl.policy import default_policy_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--model", default=None, help="Policy backbone (default: packaged all-MiniLM-L6-v2).")
    parser.add_argument("--max_steps", type=int, default=120, help="PPO optimizer steps.")
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--query_budget", type=int, default=3000, help="Queries each side may spend.")
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()

    seeds = load_quickstart_seeds()
    with tempfile.TemporaryDirectory() as output_dir:
        args = InstructionGenerationConfig(
            output_dir=output_dir,
            learning_rate=cli.learning_rate,
            max_steps=cli.max_steps,
            per_device_train_batch_size=16,
            steps_per_generation=2,
            num_iterations=2,
            max_state_length=64,
            reward_funcs=["information_gain", "elimination", "query_cost"],
            reward_weights=[1.0, 1.0, 0.25],
            save_strategy="no",
            report_to="none",
            logging_steps=20,
            seed=cli.seed,
            disable_tqdm=True,
        )
        trainer = InstructionGenerationTrainer(
            model=cli.model or default_policy_model(), args=args, train_dataset=seeds
        )
        start = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - start

        instructions = seeds["instruction"]
        baseline = trainer.evaluate_query_efficiency(instructions, cli.query_budget, policy="uniform")
        policy = trainer.evaluate_query_efficiency(instructions, cli.query_budget, policy="trained", greedy=True)

    print(f"policy training: {cli.max_steps} steps in {train_seconds:.1f} s")  # noqa: T201
    for name, result in (("uniform (Evol-Instruct)", baseline), ("trained policy", policy)):
        print(  # noqa: T201
            f"{name:<24} queries={result.num_queries} accepted={result.num_accepted} "
            f"accepted_rate={result.accepted_rate:.3f} queries/accepted={result.queries_per_accepted:.3f}"
        )
    ratio = policy.queries_per_accepted / baseline.queries_per_accepted
    print(f"queries per accepted instruction, policy / uniform baseline: {ratio:.3f}")  # noqa: T201


if __name__ == "__main__":
    main()
