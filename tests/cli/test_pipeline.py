"""The README's main command: every stage from one recipe, offline, in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from instrl_trl.cli.main import main as cli_main
from instrl_trl.stages.pipeline import PipelineConfig, stage_arguments


REPO = Path(__file__).resolve().parents[2]


def test_stage_arguments_wire_each_stage_to_the_previous_one(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    config = PipelineConfig(output_dir=str(tmp_path), policy_overrides={"max_steps": 4, "bf16": False})
    arguments = stage_arguments(config)
    assert arguments["train-policy"][-6:] == [
        "--output_dir",
        f"{tmp_path}/policy",
        "--max_steps",
        "4",
        "--bf16",
        "false",
    ]
    assert ["--policy", f"{tmp_path}/policy"] == arguments["generate"][2:4]
    assert "--dataset_name" in arguments["sft"] and f"{tmp_path}/dataset/data" in arguments["sft"]
    assert arguments["evaluate"][2:4] == ["--models", f"{tmp_path}/sft"]
    # No base model given: the sft recipe's own `model_name_or_path` is used
    assert "--model_name_or_path" not in arguments["sft"]


def test_stage_arguments_base_model_replaces_the_sft_recipes(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    arguments = stage_arguments(PipelineConfig(output_dir=str(tmp_path), base_model="smollm2-135m-instruct"))
    assert arguments["sft"][2:4] == ["--model_name_or_path", "smollm2-135m-instruct"]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"stages": ["train-policy", "deploy"]}, "unknown stages"),
        ({"policy_recipe": "no/such/recipe.yaml"}, "does not exist"),
        ({"sft_overrides": [1, 2]}, "sft_overrides"),
    ],
)
def test_bad_pipeline_config(tmp_path, overrides, match, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(ValueError, match=match):
        PipelineConfig(output_dir=str(tmp_path), **overrides)


def test_each_stage_of_the_pipeline_keeps_its_contract(tmp_path, capsys, monkeypatch):
    # A pipeline stage runs as its own command does: its folder is claimed with its recipe's fingerprint, so a rerun
    # with another value for one of its fields is refused, naming the field (issue 22)
    monkeypatch.chdir(REPO)
    evaluate = {"models": ["instrl-tiny-chat"], "max_samples": 2, "max_new_tokens": 4, "benchmark": ["ifeval:sample"]}
    command = ["pipeline", "--config", "recipes/quickstart/pipeline.yaml", "--output_dir", str(tmp_path)]
    command += ["--stages", "evaluate"]
    assert cli_main([*command, "--evaluate_overrides", json.dumps(evaluate)]) == 0
    assert (tmp_path / "eval" / "_run_fingerprint.json").is_file()
    assert cli_main([*command, "--evaluate_overrides", json.dumps({**evaluate, "max_new_tokens": 8})]) == 1
    error = capsys.readouterr().err
    assert "instrl-trl pipeline: error:" in error and "`max_new_tokens`: 4 before, 8 now" in error


@pytest.mark.slow
@pytest.mark.timeout(960)  # above its subprocesses' own timeouts
def test_quickstart_pipeline_end_to_end(tiny_backbone, tmp_path):
    policy = {"model_name_or_path": tiny_backbone, "max_steps": 4, "save_steps": 4, "per_device_train_batch_size": 8,
              "bf16": False}  # fmt: skip
    command = [
        sys.executable, "-m", "instrl_trl.cli", "pipeline", "--config", "recipes/quickstart/pipeline.yaml",
        "--output_dir", str(tmp_path),
        "--policy_overrides", json.dumps(policy),
        # an untrained policy acting greedily may accept nothing: it samples here
        "--generate_overrides", json.dumps({"max_seeds": 64, "dedup_threshold": 1.0, "greedy": False}),
        "--sft_overrides", json.dumps({"max_steps": 2}),
        "--evaluate_overrides", json.dumps({"max_samples": 5, "max_new_tokens": 8}),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Pipeline done: everything is under {tmp_path}" in result.stdout

    assert (tmp_path / "policy" / "config.json").is_file()
    assert list((tmp_path / "dataset" / "data").glob("*.parquet"))
    assert (tmp_path / "dataset" / "README.md").is_file()
    assert (tmp_path / "sft" / "model.safetensors").is_file()
    results = json.loads((tmp_path / "eval" / "sft" / "eval_results.json").read_text())
    assert set(results["benchmarks"]) == {"ifeval_sample", "ifbench_sample"}  # the quickstart recipe evaluates both
    assert results["benchmarks"]["ifeval_sample"]["num_scored"] == 5
    lines = (tmp_path / "eval" / "sft" / "predictions.jsonl").read_text().splitlines()
    for benchmark, scores in results["benchmarks"].items():
        verdicts = [
            json.loads(line)["prompt_level_strict"] for line in lines if json.loads(line)["benchmark"] == benchmark
        ]
        assert len(verdicts) == 5  # max_samples
        assert scores["prompt_level_strict_acc"] == pytest.approx(sum(verdicts) / len(verdicts))
    card = ModelCard.load(str(tmp_path / "sft" / "README.md"))
    assert {result.metric_type for result in card.data.eval_results} >= {"prompt_level_strict_acc"}
