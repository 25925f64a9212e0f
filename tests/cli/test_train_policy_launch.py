"""The README's main command, end to end in subprocesses: plain, resumed, and under `accelerate launch`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "quickstart" / "policy.yaml"


def run(command: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def shrunken(tiny_backbone: str, output_dir: Path, max_steps: int) -> list[str]:
    # The quickstart recipe, shrunken to a tiny model and a few steps; everything else as the README runs it
    return [
        "--config", str(RECIPE),
        "--model_name_or_path", tiny_backbone,
        "--output_dir", str(output_dir),
        "--max_steps", str(max_steps),
        "--save_steps", "2",
        "--per_device_train_batch_size", "8",
        "--bf16", "false",
        "--disable_tqdm", "true",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(1260)  # above its subprocesses' own timeouts
def test_quickstart_command_trains_saves_and_resumes(tiny_backbone, tmp_path):
    output_dir = tmp_path / "policy"
    first = run(["instrl-trl", "train-policy", *shrunken(tiny_backbone, output_dir, 2)], cwd=tmp_path)
    assert f"Policy saved to {output_dir}" in first.stdout
    for filename in ("config.json", "model.safetensors", "value_head.safetensors", "README.md", "queries.json"):
        assert (output_dir / filename).is_file(), filename
    queries_after_two = json.loads((output_dir / "queries.json").read_text())["total"]

    # The same command with more steps picks up the last checkpoint instead of starting again. A rollout serves
    # steps_per_generation * num_iterations = 4 steps, so step 5 collects the second one
    second = run(["instrl-trl", "train-policy", *shrunken(tiny_backbone, output_dir, 6)], cwd=tmp_path)
    assert "Resuming from the last checkpoint" in second.stdout + second.stderr
    state = json.loads((output_dir / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert json.loads((output_dir / "queries.json").read_text())["total"] > queries_after_two


@pytest.mark.slow
@pytest.mark.timeout(660)  # above its subprocesses' own timeouts
def test_accelerate_launch_cpu_config(tiny_backbone, tmp_path):
    output_dir = tmp_path / "policy"
    config_file = str(REPO / "recipes" / "accelerate_configs" / "cpu.yaml")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", config_file]
    command = [*launch, "-m", "instrl_trl.cli", "train-policy", *shrunken(tiny_backbone, output_dir, 2)]
    result = run(command, cwd=tmp_path)
    assert f"Policy saved to {output_dir}" in result.stdout
    assert (output_dir / "value_head.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.timeout(660)  # above its subprocesses' own timeouts
def test_ddp_two_cpu_processes(tiny_backbone, tmp_path):
    # Plain CPU DDP needs `use_cpu` (here ACCELERATE_USE_CPU): without it, `--multi_gpu` starts two world-1 processes
    output_dir = tmp_path / "policy"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command = [*launch, "-m", "instrl_trl.cli", "train-policy", *shrunken(tiny_backbone, output_dir, 2)]
    result = run(command, cwd=tmp_path, ACCELERATE_USE_CPU="1")
    assert result.stdout.count("Policy saved to") == 1  # printed by the main process only
    checkpoint = output_dir / "checkpoint-2"
    for rank in (0, 1):
        assert (checkpoint / f"instruction_generation_state_rank{rank}.pt").is_file()
    # Each rank rolled out its own 16 seeds (8 per micro-step, 2 micro-steps); the statistics are all-reduced
    state = torch.load(checkpoint / "instruction_generation_state_rank0.pt", weights_only=False)
    assert state["accounting"]["rewriter"]["queries"] < json.loads((output_dir / "queries.json").read_text())["total"]
    assert state["statistics"]["num_episodes"] == 32


@pytest.mark.slow
@pytest.mark.timeout(660)  # above its subprocesses' own timeouts
def test_ddp_two_cpu_processes_with_rollouts_ahead(tiny_backbone, tmp_path):
    # Two ranks, each playing the next rollout of its own seeds while PPO trains on this one, against one server:
    # the lookahead comes through accelerate's sharding of the seeds, and both ranks keep their rollout in flight
    from tests.backends.openai_server import OpenAIServer, evolving

    output_dir = tmp_path / "policy"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    with OpenAIServer(responder=evolving) as server:
        rewriter = {"backend": "endpoint", "model": "m", "base_url": server.base_url, "max_concurrency": 8}
        options = ["--rewriter", json.dumps(rewriter), "--rollouts_ahead", "1", "--save_total_limit", "5",
                   "--reward_funcs", "information_gain", "elimination", "query_cost",
                   "--reward_weights", "1.0", "1.0", "0.1"]  # fmt: skip
        command = [*launch, "-m", "instrl_trl.cli", "train-policy", *shrunken(tiny_backbone, output_dir, 6), *options]
        result = run(command, cwd=tmp_path, ACCELERATE_USE_CPU="1")
        requests = len(server.requests)
    assert result.stdout.count("Policy saved to") == 1
    # At step 2 each rank trains on rollout 0 and has rollout 1 (step 4) in flight; the checkpoint keeps its weights
    for rank in (0, 1):
        state = torch.load(
            output_dir / "checkpoint-2" / f"instruction_generation_state_rank{rank}.pt", weights_only=False
        )
        assert state["rollouts_in_flight"]["rollouts"] == [{"step": 4, "policy": 0}]
    # No rollout past the last (two per rank: steps 0 and 4) was played: every request was counted
    rewriter = json.loads((output_dir / "queries.json").read_text())["per_role"]["rewriter"]
    assert rewriter["queries"] - rewriter["cache_hits"] == requests > 0  # the response cache answered the others
    state = torch.load(output_dir / "checkpoint-6" / "instruction_generation_state_rank0.pt", weights_only=False)
    assert state["statistics"]["num_episodes"] == 2 * 2 * 16  # 2 rollouts, 2 ranks, 16 seeds each
