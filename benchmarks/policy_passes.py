"""
CPU time of the policy's forward passes: length-sorted passes of at most `ACT_TOKENS_PER_PASS` tokens when acting (what
`act` runs) and of `UPDATE_TOKENS_PER_PASS` in the PPO update's loss (what a lone CPU process runs), against one pass
padded to the longest state.

The states are those of one real rollout: the default MiniLM policy (untrained) plays `--episodes` quickstart seeds
(with an audience prefix when there are too few) against the rules engine, lock-step, with `--max_state_length`
(the trainer's default, 128; the quickstart's is 64); both sides then score the same states with the same actions, on
the same model. Three workloads, as training meets them:
- each step's states at once, no gradients (a lock-step rollout acting, a pipelined one scoring a complete step);
- groups of 32 in arrival order, no gradients (a pipelined rollout acting on the episodes whose answers came back;
  here the states shuffled with a fixed seed, then cut in 32s);
- the update: minibatches of `--minibatch` shuffled states, forward and backward of the log-probabilities, entropy
  and values (what the PPO loss differentiates), in train mode.
Each side runs `--repeats` times, alternating, keeping its best. The two sides' log-probabilities must agree to 1e-4
and their gradients to 1e-3 (padding moves them by float rounding only). Printed last: one-pass / sorted-passes CPU
time over the three workloads.

    python benchmarks/policy_passes.py [--episodes 128] [--max_state_length 128] [--minibatch 64] [--repeats 2]
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


def cpu_ms_per_state(score, batches, gradients: bool = False) -> tuple[float, list]:
    """CPU milliseconds per state of `score` over `batches`, and what it returned (no gradients unless asked)."""
    import torch

    start = time.process_time()
    with torch.set_grad_enabled(gradients):
        results = [score(states, actions) for states, actions in batches]
    return 1000 * (time.process_time() - start) / sum(len(states) for states, _ in batches), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--max_state_length", type=int, default=128)
    parser.add_argument("--minibatch", type=int, default=64, help="States per update minibatch.")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch
    from datasets import Dataset

    from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
    from instrl_trl.policy import (
        ACT_TOKENS_PER_PASS,
        UPDATE_TOKENS_PER_PASS,
        default_policy_model,
        get_action_and_value,
    )

    with tempfile.TemporaryDirectory() as output_dir:
        config = InstructionGenerationConfig(output_dir=output_dir, per_device_train_batch_size=args.episodes,
                                             steps_per_generation=1, report_to="none", disable_tqdm=True,
                                             max_state_length=args.max_state_length)  # fmt: skip
        dataset = Dataset.from_dict({"instruction": seeds(args.episodes)})
        trainer = InstructionGenerationTrainer(model=default_policy_model(), args=config, train_dataset=dataset)
        rollout = trainer.collect_rollout(dataset["instruction"])
    model, tokenizer, max_length = trainer.model, trainer.processing_class, args.max_state_length
    states, actions, steps = rollout.states, torch.cat(rollout.actions), torch.tensor(rollout.step_ids)
    step_rows = [(steps == step).nonzero().flatten() for step in steps.unique()]
    by_step = [([states[i] for i in rows], actions[rows]) for rows in step_rows]
    order = list(range(len(states)))
    random.Random(0).shuffle(order)

    def cut(size):
        return [([states[i] for i in order[start : start + size]], actions[order[start : start + size]])
                for start in range(0, len(order), size)]  # fmt: skip

    arrivals, minibatches = cut(32), cut(args.minibatch)
    lengths = [len(ids) for ids in tokenizer(states, truncation=True, max_length=max_length)["input_ids"]]
    print(  # noqa: T201
        f"{len(states)} states from {args.episodes} episodes, {len(by_step)} steps; tokens: mean "
        f"{sum(lengths) / len(lengths):.1f}, longest {max(lengths)} (max_state_length {max_length}); "
        f"ACT_TOKENS_PER_PASS={ACT_TOKENS_PER_PASS}, UPDATE_TOKENS_PER_PASS={UPDATE_TOKENS_PER_PASS}"
    )

    def scorer(tokens_per_pass):
        def score(batch, taken):
            return get_action_and_value(
                model, tokenizer, batch, max_length, actions=taken, tokens_per_pass=tokens_per_pass
            )[1]

        return score

    def updater(tokens_per_pass):
        def update(batch, taken):
            model.zero_grad(set_to_none=True)
            _, logprobs, entropy, values = get_action_and_value(
                model, tokenizer, batch, max_length, actions=taken, tokens_per_pass=tokens_per_pass
            )
            (logprobs.sum() + entropy.sum() + values.sum()).backward()
            return [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None]

        return update

    acting = {"one pass": scorer(None), "sorted": scorer(ACT_TOKENS_PER_PASS)}
    workloads = {
        "steps": ("each step at once", by_step, False, acting),
        "arrivals": ("groups of 32 in arrival order", arrivals, False, acting),
        "update": (f"update, minibatches of {args.minibatch}", minibatches, True,
                   {"one pass": updater(None), "sorted": updater(UPDATE_TOKENS_PER_PASS)}),
    }  # fmt: skip
    best = {(side, workload): float("inf") for side in ("one pass", "sorted") for workload in workloads}
    reference = {}
    for _ in range(args.repeats):
        for side in ("one pass", "sorted"):
            for workload, (_, batches, gradients, sides) in workloads.items():
                model.train(gradients)  # dropout as in the update, none when acting
                ms, results = cpu_ms_per_state(sides[side], batches, gradients)
                best[side, workload] = min(best[side, workload], ms)
                if side == "one pass":
                    reference[workload] = results
                    continue
                tolerance = 1e-3 if gradients else 1e-4
                for ours, theirs in zip(results, reference[workload], strict=True):
                    torch.testing.assert_close(ours, theirs, atol=tolerance, rtol=tolerance)
    for workload, (label, *_) in workloads.items():
        one, ours = best["one pass", workload], best["sorted", workload]
        print(f"{label:30s} one pass {one:6.1f} ms/state  sorted passes {ours:6.1f} ms/state  {one / ours:.2f}x")  # noqa: T201
    print(f"{sum(best['one pass', w] for w in workloads) / sum(best['sorted', w] for w in workloads):.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
