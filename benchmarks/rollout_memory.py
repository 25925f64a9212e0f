"""
How much memory a long PPO run at a server holds: `InstructionGenerationTrainer.train()` with pipelined rollouts (the
rewriter on a local OpenAI-compatible server, the tests' `OpenAIServer`, 5 ms a request, `max_concurrency` 32; the
reviewer the rules engine; the tests' tiny policy, or with `--minilm` the default MiniLM policy; the default rewards,
with the novelty reward's MiniLM embedder; 32 episodes a rollout, `max_operations` 6, 2 PPO epochs), once as
shipped (each rollout hands what the last one freed back to the system: `instrl_trl/backends/process_memory.py`) and
once with that release turned off, each in a fresh process so that neither inherits the other's allocator. The two
runs train the same policy on the same requests.

Printed per run: the resident memory (RSS) after the first rollout, at the end and at its peak (sampled at every
rollout), the growth from the first rollout to the end, and the training's wall time; last, the growth as shipped over
the growth without the release.

    python benchmarks/rollout_memory.py [--max_steps 200] [--minilm]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for the tests' server and model

STEPS_PER_ROLLOUT = 4  # 2 micro-steps x 2 PPO epochs


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def train_and_measure(max_steps: int, release: bool, minilm: bool) -> dict:
    """One training in this process; returns the RSS after every rollout (MB) and the wall time."""
    from transformers import TrainerCallback

    from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
    from instrl_trl.data import load_quickstart_seeds
    from instrl_trl.policy import default_policy_model
    from instrl_trl.trainer import instruction_generation_trainer
    from tests.backends.openai_server import OpenAIServer, evolving
    from tests.tiny_models import build_tiny_policy_backbone

    if not release:
        instruction_generation_trainer.release_freed_memory = lambda: False
    samples = []

    class Sample(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % STEPS_PER_ROLLOUT == 0:
                samples.append(resident_mb())

    with tempfile.TemporaryDirectory() as workdir, OpenAIServer(responder=evolving, latency=0.005) as server:
        config = InstructionGenerationConfig(
            output_dir=f"{workdir}/policy", per_device_train_batch_size=16, steps_per_generation=2, num_iterations=2,
            max_steps=max_steps, logging_steps=max_steps, save_strategy="no", report_to="none", max_operations=6,
            disable_tqdm=True, seed=1,
            rewriter={"backend": "endpoint", "model": "m", "base_url": server.base_url, "max_concurrency": 32},
        )  # fmt: skip
        trainer = InstructionGenerationTrainer(
            model=default_policy_model() if minilm else build_tiny_policy_backbone(f"{workdir}/backbone"),
            args=config,
            train_dataset=load_quickstart_seeds(),
            callbacks=[Sample()],
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        requests = len(server.requests)
    return {"samples": samples, "seconds": seconds, "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--max_steps", type=int, default=200, help="PPO micro-steps (4 a rollout).")
    parser.add_argument("--minilm", action="store_true", help="The default MiniLM policy instead of the tiny one.")
    parser.add_argument("--side", choices=["release", "keep"], default=None, help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.max_steps < 2 * STEPS_PER_ROLLOUT:
        parser.error(f"--max_steps {cli.max_steps} is under two rollouts ({2 * STEPS_PER_ROLLOUT}): nothing can grow.")
    if cli.side is not None:  # one measured run, in the process the parent started
        print(json.dumps(train_and_measure(cli.max_steps, cli.side == "release", cli.minilm)))  # noqa: T201
        return

    growth = {}
    for side, name in [("keep", "without the release"), ("release", "as shipped (release every rollout)")]:
        command = [sys.executable, __file__, "--max_steps", str(cli.max_steps), "--side", side]
        command += ["--minilm"] if cli.minilm else []
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        run = json.loads(output.strip().splitlines()[-1])
        samples = run["samples"]
        growth[side] = samples[-1] - samples[0]
        print(  # noqa: T201
            f"{name:<36} {len(samples)} rollouts, {run['requests']} requests: RSS after the first rollout "
            f"{samples[0]:.0f} MB, at the end {samples[-1]:.0f} MB (peak {max(samples):.0f} MB), growth "
            f"{growth[side]:.0f} MB; train() {run['seconds']:.0f} s"
        )
    print(f"RSS growth as shipped / without the release: {growth['release'] / growth['keep']:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
