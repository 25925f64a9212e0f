"""
CPU time of the policy's acting passes: length-sorted passes of at most `ACT_TOKENS_PER_PASS` tokens (what `act` runs)
against one pass padded to the longest state (what it ran before).

The states are those of one real rollout: the default MiniLM policy (untrained) plays `--episodes` quickstart seeds
(with an audience prefix when there are too few) against the rules engine, lock-step; both sides then score the same
states with the same actions, no gradients, on the same model. Two workloads, as a rollout meets them:
- each step's states at once (a lock-step rollout acting, a pipelined one scoring a complete step);
- groups of 32 in arrival order (a pipelined rollout acting on the episodes whose answers came back; here the states
  shuffled with a fixed seed, then cut in 32s).
Each side runs `--repeats` times, alternating, keeping its best. The two sides' log-probabilities must agree to 1e-4
(padding moves them by float rounding only). Printed last: one-pass / sorted-passes CPU time over both workloads.

    python benchmarks/acting_passes.py [--episodes 128] [--repeats 2]
"""

import argparse
import os
import random
import tempfile
import time


os.environ.setdefault("TQDM_DISABLE", "1")


def seeds(num_seeds: int) -> list[str]:
    from instrl_trl.data import load_quickstart_seeds

    base = load_quickstart_seeds()["instruction"]
    audiences = ["a beginner", "an expert", "a child", "a manager", "a student", "a journalist", "a teacher"]
    prefixes = ["", *(f"For {audience}: " for audience in audiences)]
    if num_seeds > len(prefixes) * len(base):
        raise ValueError(f"At most {len(prefixes) * len(base)} episodes.")
    return [prefix + text for prefix in prefixes for text in base][:num_seeds]


def cpu_ms_per_state(score, batches) -> tuple[float, list]:
    import torch

    start = time.process_time()
    with torch.no_grad():
        logprobs = [score(states, actions) for states, actions in batches]
    return 1000 * (time.process_time() - start) / sum(len(states) for states, _ in batches), logprobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch
    from datasets import Dataset

    from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
    from instrl_trl.policy import ACT_TOKENS_PER_PASS, default_policy_model, get_action_and_value

    with tempfile.TemporaryDirectory() as output_dir:
        config = InstructionGenerationConfig(output_dir=output_dir, per_device_train_batch_size=args.episodes,
                                             steps_per_generation=1, report_to="none", disable_tqdm=True)  # fmt: skip
        dataset = Dataset.from_dict({"instruction": seeds(args.episodes)})
        trainer = InstructionGenerationTrainer(model=default_policy_model(), args=config, train_dataset=dataset)
        rollout = trainer.collect_rollout(dataset["instruction"])
    model, tokenizer = trainer.model.eval(), trainer.processing_class
    states, actions, steps = rollout.states, torch.cat(rollout.actions), torch.tensor(rollout.step_ids)
    step_rows = [(steps == step).nonzero().flatten() for step in steps.unique()]
    by_step = [([states[i] for i in rows], actions[rows]) for rows in step_rows]
    order = list(range(len(states)))
    random.Random(0).shuffle(order)
    arrivals = [([states[i] for i in order[start : start + 32]], actions[order[start : start + 32]])
                for start in range(0, len(order), 32)]  # fmt: skip
    lengths = [len(ids) for ids in tokenizer(states, truncation=True, max_length=128)["input_ids"]]
    print(  # noqa: T201
        f"{len(states)} states from {args.episodes} episodes, {len(by_step)} steps; tokens: mean "
        f"{sum(lengths) / len(lengths):.1f}, longest {max(lengths)}; ACT_TOKENS_PER_PASS={ACT_TOKENS_PER_PASS}"
    )

    def scorer(tokens_per_pass):
        return lambda batch, taken: get_action_and_value(
            model, tokenizer, batch, actions=taken, tokens_per_pass=tokens_per_pass
        )[1]

    sides = {"one pass": scorer(None), "sorted passes": scorer(ACT_TOKENS_PER_PASS)}
    best = {(side, workload): float("inf") for side in sides for workload in ("steps", "arrivals")}
    reference = {}
    for _ in range(args.repeats):
        for side, score in sides.items():
            for workload, batches in (("steps", by_step), ("arrivals", arrivals)):
                ms, logprobs = cpu_ms_per_state(score, batches)
                best[side, workload] = min(best[side, workload], ms)
                if side == "one pass":
                    reference[workload] = logprobs
                else:
                    for ours, theirs in zip(logprobs, reference[workload], strict=True):
                        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    for workload, label in (("steps", "each step at once"), ("arrivals", "groups of 32 in arrival order")):
        one, ours = best["one pass", workload], best["sorted passes", workload]
        print(f"{label:30s} one pass {one:6.1f} ms/state  sorted passes {ours:6.1f} ms/state  {one / ours:.2f}x")  # noqa: T201
    total_one = best["one pass", "steps"] + best["one pass", "arrivals"]
    total_ours = best["sorted passes", "steps"] + best["sorted passes", "arrivals"]
    print(f"{total_one / total_ours:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
