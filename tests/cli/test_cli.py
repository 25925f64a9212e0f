import json
import subprocess
import sys

import pytest
from datasets import Dataset

from instrl_trl.cli.main import STAGES, main
from instrl_trl.cli.train_policy import make_parser
from instrl_trl.data.loading import DatasetArguments
from instrl_trl.data.seeds import load_seeds
from instrl_trl.stages.train_policy import PolicyScriptArguments
from instrl_trl.trainer import InstructionGenerationConfig
from tests.config_docs import assert_config_documented


SEEDS = ["Name three rivers in Spain.", "Write a poem about the ocean.", "Plan a trip to a city."]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "instrl_trl.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_lists_the_stages():
    completed = run_cli("--help")
    assert completed.returncode == 0, completed.stderr
    assert "train-policy" in completed.stdout
    assert "--config" in completed.stdout


def test_stage_help_lists_the_config_fields():
    # TRL's `test_help_no_type_error`: a stray `%` in any help text makes argparse fail here
    completed = run_cli("train-policy", "--help")
    assert completed.returncode == 0, completed.stderr
    assert "--max_operations" in completed.stdout
    assert "--dataset_name" in completed.stdout
    assert completed.stdout.startswith("usage: instrl-trl train-policy")


def test_unknown_stage_exits_2_with_the_valid_stages(capsys):
    assert main(["train-polcy"]) == 2
    error = capsys.readouterr().err
    assert "unknown stage 'train-polcy'" in error
    assert all(stage in error for stage in STAGES)


@pytest.mark.parametrize("cls", [PolicyScriptArguments, DatasetArguments])
def test_script_arguments_are_documented(cls):
    assert_config_documented(cls)


def write_recipe(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def test_unknown_recipe_key_raises(tmp_path):
    recipe = write_recipe(tmp_path, "output_dir: data/run\nmax_operations: 3\nmax_operatoins: 4\n")
    with pytest.raises(ValueError, match="max_operatoins"):
        make_parser().parse_args_and_config(["--config", recipe])


def test_command_line_overrides_the_recipe(tmp_path):
    recipe = write_recipe(
        tmp_path,
        "dataset_name: seeds.jsonl\noutput_dir: data/run\nmax_operations: 3\nreport_to: none\nuse_cpu: true\n",
    )
    override = str(tmp_path / "override")
    script_args, training_args = make_parser().parse_args_and_config(
        ["--config", recipe, "--output_dir", override, "--gamma", "0.9"]
    )
    assert isinstance(script_args, PolicyScriptArguments)
    assert isinstance(training_args, InstructionGenerationConfig)
    assert script_args.dataset_name == "seeds.jsonl"
    assert training_args.output_dir == override
    assert training_args.max_operations == 3  # from the recipe
    assert training_args.gamma == 0.9  # from the command line


def test_load_seeds_defaults_to_the_quickstart_seeds():
    seeds = load_seeds(None)
    assert "instruction" in seeds.column_names
    assert seeds.num_rows >= 180
    assert all(isinstance(text, str) and text.strip() for text in seeds["instruction"])


def test_load_seeds_from_a_jsonl_file(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"instruction": seed}) + "\n" for seed in SEEDS))
    assert load_seeds(str(path))["instruction"] == SEEDS


def test_load_seeds_from_a_csv_file(tmp_path):
    path = tmp_path / "seeds.csv"
    path.write_text("instruction,source\n" + "".join(f'"{seed}",test\n' for seed in SEEDS))
    seeds = load_seeds(str(path))
    assert seeds["instruction"] == SEEDS
    assert seeds.column_names == ["instruction", "source"]


def test_load_seeds_from_a_saved_folder(tmp_path):
    folder = str(tmp_path / "saved")
    Dataset.from_dict({"instruction": SEEDS}).save_to_disk(folder)
    assert load_seeds(folder)["instruction"] == SEEDS


def test_load_seeds_rejects_an_unsupported_file(tmp_path):
    path = tmp_path / "seeds.xlsx"
    path.write_bytes(b"not a spreadsheet")
    with pytest.raises(ValueError, match="unsupported file type '.xlsx'.*.jsonl"):
        load_seeds(str(path))


def test_a_stage_that_cannot_run_exits_1_with_one_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("INSTRL_TRL_TRACEBACK", raising=False)
    recipe = tmp_path / "policy.yaml"
    recipe.write_text(f"output_dir: {tmp_path / 'out'}\nmax_steps: 0\n")
    assert main(["train-policy", "--config", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("instrl-trl train-policy: error: ") and "max_steps" in err
    assert "Traceback" not in err


def test_the_traceback_is_kept_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRL_TRL_TRACEBACK", "1")
    recipe = tmp_path / "policy.yaml"
    recipe.write_text(f"output_dir: {tmp_path / 'out'}\nmax_steps: 0\n")
    with pytest.raises(ValueError, match="max_steps"):
        main(["train-policy", "--config", str(recipe)])


def test_a_stage_that_succeeds_leaves_its_process_group_and_one_that_fails_keeps_it(tmp_path, monkeypatch):
    # Under `accelerate launch` a finished stage destroys its process group itself: left to the interpreter's exit,
    # Gloo's threads aborted a rank of a DDP run that had trained and saved (SIGABRT, exit -6). After an error the
    # group is kept (the other ranks may be in a collective). Here a one-process Gloo group stands in for the launch.
    import torch.distributed as dist

    monkeypatch.delenv("INSTRL_TRL_TRACEBACK", raising=False)
    store = tmp_path / "store"
    try:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"output_dir: {tmp_path / 'bad'}\nmax_steps: 0\n")
        assert main(["train-policy", "--config", str(bad)]) == 1
        assert dist.is_initialized()
        arguments = ["--policy", "uniform", "--max_seeds", "2", "--output_dir", str(tmp_path / "dataset")]
        assert main(["generate", *arguments]) == 0
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
