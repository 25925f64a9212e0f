"""
The rules every stage keeps (issue 22), checked for each stage through its command, in one parametrized test each: a
second run into a folder in use is refused at once, `--max_steps 0` is an error before anything loads, and a seed equal
to a packaged benchmark prompt is refused before any query. Each case fails before training or generating, so the
whole file runs in seconds after the models' first build.
"""

import json
from pathlib import Path

import pytest

from instrl_trl.backends.accounting import ROLES, read_queries_file
from instrl_trl.cli.main import main
from instrl_trl.data.benchmark_prompts import benchmark_prompts
from instrl_trl.runs.folder import RunFolderLock


REPO = Path(__file__).resolve().parents[2]
# The stages that train or generate from seeds, with the recipe a user starts from
SEED_STAGES = {
    "train-policy": ["--config", "recipes/quickstart/policy.yaml"],
    "train-instructor": ["--config", "recipes/quickstart/instructor.yaml"],
    "generate": ["--config", "recipes/quickstart/generate.yaml", "--policy", "uniform"],
}
TRAINER_STAGES = ("train-policy", "train-instructor", "sft")


@pytest.fixture
def messages_file(tmp_path):
    path = tmp_path / "messages.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"Name {n} rivers."}, {"role": "assistant", "content": "Nile."}]}
        for n in range(4)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def stage_arguments(stage: str, messages_file) -> list[str]:
    if stage in SEED_STAGES:
        return list(SEED_STAGES[stage])
    if stage == "sft":
        return ["--config", "recipes/quickstart/sft.yaml", "--dataset_name", str(messages_file)]
    # The quickstart recipe's own command names the built-in model, which must resolve (issue 22)
    return ["--config", "recipes/quickstart/evaluate.yaml", "--models", "instrl-tiny-chat", "--max_samples", "2"]


@pytest.mark.parametrize("stage", [*SEED_STAGES, "sft", "evaluate"])
def test_a_folder_in_use_is_refused_at_once(stage, tmp_path, messages_file, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    output_dir = tmp_path / "out"
    with RunFolderLock(str(output_dir), "another run"):
        code = main([stage, *stage_arguments(stage, messages_file), "--output_dir", str(output_dir)])
    assert code == 1
    error = capsys.readouterr().err
    assert "is in use by process" in error and "another run" in error
    # Nothing of the refused run was written beside the lock it could not take
    assert sorted(path.name for path in output_dir.iterdir()) == []


@pytest.mark.parametrize("stage", TRAINER_STAGES)
def test_max_steps_zero_is_an_error_before_anything_loads(stage, tmp_path, messages_file, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    output_dir = tmp_path / "out"
    code = main([stage, *stage_arguments(stage, messages_file), "--output_dir", str(output_dir), "--max_steps", "0"])
    assert code == 1
    assert "`max_steps` is 0" in capsys.readouterr().err
    assert not output_dir.exists()


@pytest.mark.parametrize("stage", list(SEED_STAGES))
def test_a_benchmark_prompt_as_seed_is_refused(stage, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    prompt = benchmark_prompts()[0]
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        "".join(
            json.dumps({"instruction": text}) + "\n" for text in ["Name three rivers.", prompt.text, "Draw a map."]
        )
    )
    output_dir = tmp_path / "out"
    code = main([stage, *SEED_STAGES[stage], "--dataset_name", str(seeds), "--output_dir", str(output_dir)])
    assert code == 1
    error = capsys.readouterr().err
    assert "benchmark" in error and prompt.benchmark in error
    assert not (output_dir / "queries.json").exists()


# A server nobody runs: every query fails at once (connection refused), with no retry
DEAD_ENDPOINT = {
    "backend": "endpoint",
    "model": "m",
    "base_url": "http://127.0.0.1:9/v1",
    "max_retries": 0,
    "timeout": 5,
}
DEAD_ROLE = {
    "train-policy": ["--rewriter", json.dumps(DEAD_ENDPOINT), "--max_steps", "1"],
    "generate": ["--rewriter", json.dumps(DEAD_ENDPOINT), "--max_seeds", "8"],
    "evaluate": ["--generator", json.dumps({k: v for k, v in DEAD_ENDPOINT.items() if k != "model"})],
}
# A field of each stage's recipe that changes its results, with another value
CHANGED_FIELD = {
    "train-policy": ("learning_rate", "0.5"),
    "generate": ("max_operations", "2"),
    "evaluate": ("max_new_tokens", "8"),
}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("stage", list(DEAD_ROLE))
def test_a_dead_endpoint_stops_the_stage_with_one_message(stage, tmp_path, messages_file, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    output_dir = tmp_path / "out"
    arguments = [stage, *stage_arguments(stage, messages_file), "--output_dir", str(output_dir), *DEAD_ROLE[stage]]
    assert main(arguments) == 1
    stderr = capsys.readouterr().err
    prefix = f"instrl-trl {stage}: error:"
    (error,) = [line[line.index(prefix) :] for line in stderr.splitlines() if prefix in line]
    assert "Traceback" not in stderr  # one message, not a crash
    assert "127.0.0.1:9" in error or "No row could be scored" in error  # says which server, or what came of it
    if stage in CHANGED_FIELD:  # ... and its recipe is kept: a rerun with another one is refused, naming the field
        field, value = CHANGED_FIELD[stage]
        assert main([*arguments, f"--{field}", value]) == 1
        assert f"`{field}`" in capsys.readouterr().err
    for path in output_dir.rglob("queries*.json"):  # whatever was spent, in the one format
        assert set(read_queries_file(str(path))) == set(ROLES)
