"""
The README's DeepSpeed launch of the `sft` stage, in subprocesses on CPU: `accelerate launch` with the repository's
ZeRO-2 and ZeRO-3 configs. `DS_ACCELERATOR=cpu` makes DeepSpeed use its CPU accelerator (the first run builds a small
communication op, about a minute); the configs' GPU settings (`mixed_precision: bf16`, 8 processes) are overridden on
the command line.
"""

import os
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM


REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "quickstart" / "sft.yaml"


def launch(config: str, num_processes: int, model: str, dataset: str, output_dir: Path, cwd: Path):
    command = [
        "accelerate", "launch",
        "--config_file", str(REPO / "recipes" / "accelerate_configs" / config),
        "--num_processes", str(num_processes),
        "--mixed_precision", "no",
        "-m", "instrl_trl.cli", "sft",
        "--config", str(RECIPE),
        "--model_name_or_path", model,
        "--dataset_name", dataset,
        "--output_dir", str(output_dir),
        "--max_steps", "2",
        "--logging_steps", "1",
        "--per_device_train_batch_size", str(8 // num_processes),  # the same global batch of 8
        "--disable_tqdm", "true",
    ]  # fmt: skip
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def assert_trained_and_complete(output_dir: Path, base_model: str) -> None:
    """The saved model loads, every tensor has its full shape (ZeRO-3 gathered it) and differs from the base's."""
    trained = AutoModelForCausalLM.from_pretrained(output_dir).state_dict()
    base = AutoModelForCausalLM.from_pretrained(base_model).state_dict()
    assert trained.keys() == base.keys()
    for name, tensor in trained.items():
        assert tensor.shape == base[name].shape and tensor.numel() > 0, name
        assert not torch.equal(tensor, base[name]), f"{name} was not trained"


@pytest.mark.slow
@pytest.mark.timeout(460)  # above its subprocesses' own timeouts
@pytest.mark.parametrize(("config", "num_processes", "stage"), [("zero2.yaml", 1, "2"), ("zero3.yaml", 2, "3")])
def test_accelerate_launch_deepspeed(config, num_processes, stage, tiny_causal_lm, messages_dataset, tmp_path):
    output_dir = tmp_path / "sft"
    result = launch(config, num_processes, tiny_causal_lm, messages_dataset, output_dir, cwd=tmp_path)

    assert f"Model saved to {output_dir}" in result.stdout
    assert_trained_and_complete(output_dir, tiny_causal_lm)
    card = (output_dir / "README.md").read_text()
    assert f"| DeepSpeed | ZeRO stage {stage} |" in card
    assert f"| num_processes | {num_processes} |" in card
    assert "| total_train_batch_size | 8 |" in card
    assert (output_dir / "loss_curve.png").is_file()
