"""
Prefetched tool calls in the GRPO instructor's rollouts: the wall time of TRL's tool loop (every tool call of a step,
with the post-tool generations between them) and of the whole GRPO step, with `pipelined_tool_calls` off and on,
the rewriter and the reviewer on a local OpenAI-compatible server that answers each request after a fixed latency.
The runs train the same weights (checked here); what differs is how many requests are in flight at once.

    python benchmarks/instructor_tool_calls.py [--latency 0.2] [--num_generations 8] [--num_groups 1] [--steps 1]

Uses the repository's test server (`tests/`): run it from the repository root with `PYTHONPATH=.`.
"""

import argparse
import os
import tempfile
import time

import torch

from instrl_trl.backends.roles import build_role
from instrl_trl.operations import build_operation_library
from instrl_trl.rewards import get_reward_funcs
from instrl_trl.stages.train_instructor import load_instructor_seeds
from instrl_trl.tool_environment import DEFAULT_TASK_PROMPT, InstructionEnvironmentFactory
from instrl_trl.trainer.instructor import InstructorConfig, InstructorTrainer, default_instructor
from tests.backends.openai_server import OpenAIServer
from tests.trainer.instructor.test_prefetch import rewrites_and_verdicts


REWARD_FUNCS, REWARD_WEIGHTS = ["information_gain", "elimination", "query_cost"], [1.0, 1.0, 0.25]


def run(model: str, args, pipelined: bool) -> dict:
    with OpenAIServer(responder=rewrites_and_verdicts, latency=args.latency) as server:
        output_dir = tempfile.mkdtemp()
        config = InstructorConfig(
            output_dir=output_dir, use_cpu=True, max_steps=args.steps, report_to="none", save_strategy="no",
            per_device_train_batch_size=args.num_generations * args.num_groups, num_generations=args.num_generations,
            max_completion_length=256, max_operations=3, learning_rate=1e-3, seed=0, disable_tqdm=True,
            reward_funcs=REWARD_FUNCS, operation_reward_weights=REWARD_WEIGHTS, pipelined_tool_calls=pipelined,
        )  # fmt: skip
        role = {"backend": "endpoint", "model": "served", "base_url": server.base_url, "max_concurrency": 64}
        # No response cache: every call is paid, as in a first run
        factory = InstructionEnvironmentFactory(
            build_operation_library(),
            build_role("rewriter", role),
            build_role("reviewer", {**role, "verdict_mode": "parse", "compare_with_rules": False}),
            get_reward_funcs(REWARD_FUNCS),
            reward_weights=REWARD_WEIGHTS,
            max_operations=config.max_operations,
        )
        trainer = InstructorTrainer(model, config, load_instructor_seeds(config), factory)
        loop_seconds = []
        tool_call_loop = trainer._tool_call_loop

        def timed(*loop_args):
            start = time.perf_counter()
            try:
                return tool_call_loop(*loop_args)
            finally:
                loop_seconds.append(time.perf_counter() - start)

        trainer._tool_call_loop = timed
        start = time.perf_counter()
        trainer.train()
        return {
            "step_seconds": (time.perf_counter() - start) / args.steps,
            "loop_seconds": sum(loop_seconds) / args.steps,
            "queries": trainer.accounting.total,
            "max_in_flight": server.max_in_flight,
            "weights": [param.detach().clone() for param in trainer.model.parameters()],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="Seconds the server takes per request.")
    parser.add_argument("--num_generations", type=int, default=8, help="Completions per seed (G).")
    parser.add_argument("--num_groups", type=int, default=1, help="Seeds per step.")
    parser.add_argument("--steps", type=int, default=1, help="GRPO steps per run.")
    args = parser.parse_args()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    torch.set_num_threads(1)
    model = default_instructor(build_operation_library(), DEFAULT_TASK_PROMPT)
    results = {pipelined: run(model, args, pipelined) for pipelined in (False, True)}
    same = all(torch.equal(a, b) for a, b in zip(results[False]["weights"], results[True]["weights"], strict=True))
    title = f"GRPO step, G={args.num_generations} x {args.num_groups} seed(s), server latency {args.latency} s"
    lines = [
        f"{title}, {args.steps} step(s)",
        f"{'pipelined_tool_calls':<22}{'queries':>9}{'in flight':>11}{'tool loop s':>13}{'step s':>9}",
    ]
    for pipelined, result in results.items():
        lines.append(
            f"{pipelined!s:<22}{result['queries']:>9}{result['max_in_flight']:>11}"
            f"{result['loop_seconds']:>13.2f}{result['step_seconds']:>9.2f}"
        )
    speedup = results[False]["loop_seconds"] / results[True]["loop_seconds"]
    lines.append(f"tool loop speed-up: {speedup:.2f}x; same weights after training: {same}")
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    main()
