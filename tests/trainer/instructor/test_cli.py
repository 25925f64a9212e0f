import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM


REPO_ROOT = Path(__file__).resolve().parents[3]
RECIPE = "recipes/quickstart/instructor.yaml"


def _env(instructor_cache: str) -> dict:
    # The session's built instructor is reused; one thread each, as on the shared machine
    return {**os.environ, "INSTRL_TRL_MODELS_CACHE": instructor_cache, "OMP_NUM_THREADS": "1"}


def _check_output(output_dir: Path) -> None:
    AutoModelForCausalLM.from_pretrained(output_dir)
    assert (output_dir / "README.md").read_text().startswith("---")
    assert (output_dir / "queries.json").is_file()


def test_help_lists_the_stage(capsys):
    from instrl_trl.cli.main import main

    assert main(["--help"]) == 0
    assert "train-instructor" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["train-instructor", "--help"])
    assert exit_info.value.code == 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_instructor_cli_runs_offline_and_saves_a_causal_lm(tiny_instructor, instructor_cache, tmp_path):
    output_dir = tmp_path / "instructor"
    command = [sys.executable, "-m", "instrl_trl.cli", "train-instructor", "--config", RECIPE,
               "--max_steps", "2", "--output_dir", str(output_dir)]  # fmt: skip
    result = subprocess.run(
        command, check=False, cwd=REPO_ROOT, env=_env(instructor_cache), capture_output=True, text=True, timeout=540
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Instructor saved to" in result.stdout
    _check_output(output_dir)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_instructor_under_accelerate_launch(tiny_instructor, instructor_cache, tmp_path):
    output_dir = tmp_path / "instructor"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               "recipes/accelerate_configs/cpu.yaml", "-m", "instrl_trl.cli", "train-instructor", "--config", RECIPE,
               "--max_steps", "1", "--output_dir", str(output_dir), "--save_strategy", "no",
               "--reward_funcs", "information_gain", "query_cost",
               "--operation_reward_weights", "1.0", "0.25"]  # fmt: skip
    result = subprocess.run(
        command, check=False, cwd=REPO_ROOT, env=_env(instructor_cache), capture_output=True, text=True, timeout=540
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _check_output(output_dir)
