"""The generation stage end to end: rows, resume, bad input, push and load back."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import Dataset, load_dataset

from instrl_trl.generation import DatasetGenerationConfig, ExpertUnavailableError, generate_dataset
from instrl_trl.generation.shards import list_shards


def lm_eval_verdict(row: dict) -> bool | None:
    """
    Whether the row's response follows all its constraints, judged here with lm-eval's own checkers (as its IFEval
    `test_instruction_following_strict` does), not through `instrl_trl.constraints`.
    """
    if not row["constraints"]:
        return None
    import langdetect
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT

    langdetect.DetectorFactory.seed = 0  # lm-eval leaves langdetect unseeded; the package's verdicts are seeded
    response = row["response"]
    verdicts = []
    for constraint in row["constraints"]:
        checker = INSTRUCTION_DICT[constraint["instruction_id"]](constraint["instruction_id"])
        checker.build_description(**{k: v for k, v in json.loads(constraint["kwargs"]).items() if v is not None})
        arguments = checker.get_instruction_args()
        if arguments and "prompt" in arguments:
            checker.build_description(prompt=row["instruction"])
        verdicts.append(bool(response.strip() and checker.check_following(response)))
    return all(verdicts)


def make_config(tmp_path, policy, **overrides) -> DatasetGenerationConfig:
    kwargs = {
        "policy": policy,
        "output_dir": str(tmp_path / "dataset"),
        "batch_size": 8,
        "shard_size": 10,
        "keep_intermediate": True,
        "keep_unverified": True,
        "dedup_threshold": 1.0,  # exact duplicates only: no embedding model to load in these tests
        # The test policy is untrained: acting greedily it may always stop; seeded sampling yields rows
        "greedy": False,
        "max_seeds": 24,
    }
    kwargs.update(overrides)
    return DatasetGenerationConfig(**kwargs)


def read_rows(output_dir) -> list[dict]:
    files = [str(path) for path in list_shards(output_dir)]
    return load_dataset("parquet", data_files=files, split="train").to_list() if files else []


def test_rows_have_the_documented_columns(tiny_policy, quickstart_seeds, tmp_path):
    config = make_config(tmp_path, tiny_policy)
    summary = generate_dataset(config, quickstart_seeds)
    rows = read_rows(config.output_dir)
    assert summary.num_rows == len(rows) > 0
    assert summary.num_seeds == 24
    for row in rows:
        assert row["messages"] == [
            {"role": "user", "content": row["instruction"]},
            {"role": "assistant", "content": row["response"]},
        ]
        assert row["depth"] == len(row["operations"]) >= 1
        assert 1 <= row["evolutions"] <= row["depth"]
        assert row["seed"] == quickstart_seeds[row["seed_index"]]["instruction"]
        assert row["seed_index"] < 24
        assert row["verified"] is lm_eval_verdict(row), row
    # each accepted evolution of a seed is its own row
    by_seed = {}
    for row in rows:
        by_seed.setdefault(row["seed_index"], []).append(row["evolutions"])
    assert all(len(set(evolutions)) == len(evolutions) for evolutions in by_seed.values())
    # exact duplicates are dropped
    assert len({row["instruction"].lower() for row in rows}) == len(rows)
    # both verdicts occur, so the comparison above is not met by a constant
    assert {row["verified"] for row in rows if row["constraints"]} == {True, False}
    queries = json.loads((Path(config.output_dir) / "queries-rank00000.json").read_text())
    per_role = queries["per_role"]
    assert per_role["rewriter"]["queries"] > 0 and per_role["expert"]["queries"] >= len(rows)
    assert queries["total"] == sum(usage["queries"] for usage in per_role.values())


def test_second_run_resumes_and_adds_nothing(tiny_policy, quickstart_seeds, tmp_path):
    config = make_config(tmp_path, tiny_policy)
    generate_dataset(config, quickstart_seeds)
    before = read_rows(config.output_dir)
    again = generate_dataset(config, quickstart_seeds)
    assert again.num_seeds == 0 and again.num_skipped_seeds == 24 and again.num_rows == 0
    assert read_rows(config.output_dir) == before


def test_same_inputs_same_dataset(tiny_policy, quickstart_seeds, tmp_path):
    first = make_config(tmp_path / "a", tiny_policy)
    second = make_config(tmp_path / "b", tiny_policy)
    generate_dataset(first, quickstart_seeds)
    generate_dataset(second, quickstart_seeds)
    assert read_rows(first.output_dir) == read_rows(second.output_dir)


@pytest.mark.parametrize(
    ("seeds", "match"),
    [
        (Dataset.from_dict({"prompt": ["Name a river."]}), "instruction_column"),
        (Dataset.from_dict({"instruction": []}), "no usable instruction"),
    ],
)
def test_bad_seeds_fail_before_any_query(tiny_policy, tmp_path, seeds, match):
    with pytest.raises(ValueError, match=match):
        generate_dataset(make_config(tmp_path, tiny_policy), seeds)
    assert not list_shards(tmp_path / "dataset")


def test_policy_with_unknown_operations(tiny_backbone, quickstart_seeds, tmp_path):
    from transformers import AutoTokenizer

    from instrl_trl.policy import build_policy

    folder = str(tmp_path / "odd-policy")
    build_policy(tiny_backbone, ["deepening", "teleport", "stop"]).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_backbone).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"chooses operations \['teleport'\] that are not defined"):
        generate_dataset(make_config(tmp_path, folder), quickstart_seeds)


def test_unreachable_expert_keeps_the_rows_already_written(tiny_policy, quickstart_seeds, tmp_path):
    config = make_config(tmp_path, tiny_policy, max_seeds=16)
    generate_dataset(config, quickstart_seeds)
    written = read_rows(config.output_dir)
    assert written

    # More seeds, and an expert endpoint where nothing listens
    from tests.hub_server import reserve_port

    expert = {"backend": "endpoint", "model": "m", "base_url": f"http://127.0.0.1:{reserve_port()}/v1",
              "max_retries": 0, "timeout": 2}  # fmt: skip
    broken = make_config(tmp_path, tiny_policy, max_seeds=32, expert=expert)
    with pytest.raises(RuntimeError, match="are kept; once the cause is fixed, run the same command again") as info:
        generate_dataset(broken, quickstart_seeds)
    assert isinstance(info.value.__cause__, ExpertUnavailableError)
    assert read_rows(config.output_dir) == written


@pytest.mark.slow
@pytest.mark.timeout(1500)  # above its subprocesses' own timeouts
def test_killed_run_resumes_to_the_same_rows(tiny_policy, tmp_path):
    # The CLI in a subprocess, killed with SIGKILL once some shards are on disk, then rerun to the end; its rows
    # must equal an uninterrupted run's: none lost, none repeated
    def command(output_dir):
        return [
            sys.executable, "-m", "instrl_trl.cli", "generate", "--policy", tiny_policy, "--output_dir",
            str(output_dir), "--batch_size", "4", "--shard_size", "4", "--keep_intermediate", "true",
            "--keep_unverified", "true", "--max_seeds", "120", "--greedy", "false",
        ]  # fmt: skip

    reference = tmp_path / "reference"
    subprocess.run(command(reference), check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list_shards(killed)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed; give it more seeds"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = len(read_rows(killed))
    assert 0 < partial < len(read_rows(reference))

    subprocess.run(command(killed), check=True, capture_output=True, timeout=600)
    key = lambda row: (row["seed_index"], row["instruction"])  # noqa: E731
    assert sorted(read_rows(killed), key=key) == sorted(read_rows(reference), key=key)


def test_push_dataset_and_policy_round_trip(hub, tiny_policy, tmp_path):
    from huggingface_hub import DatasetCard
    from transformers import AutoModelForSequenceClassification

    from instrl_trl.cli.generate import main

    config = make_config(tmp_path, tiny_policy, max_seeds=8, push_to_hub=True, hub_dataset_id="user/instructions",
                         hub_policy_id="user/operation-policy")  # fmt: skip
    main(config)
    local = read_rows(config.output_dir)
    pushed = load_dataset("user/instructions", split="train").to_list()
    key = lambda row: (row["seed_index"], row["instruction"])  # noqa: E731
    assert sorted(pushed, key=key) == sorted(local, key=key)
    card = DatasetCard.load("user/instructions", repo_type="dataset")
    assert "Rows: " in card.content and card.data.license == "apache-2.0"

    policy = AutoModelForSequenceClassification.from_pretrained("user/operation-policy")
    expected = AutoModelForSequenceClassification.from_pretrained(tiny_policy)
    assert policy.config.id2label == expected.config.id2label
    for (name, a), (_, b) in zip(policy.state_dict().items(), expected.state_dict().items(), strict=True):
        assert a.equal(b), name


def test_policy_and_seeds_from_the_hub(hub, tiny_policy, quickstart_seeds, tmp_path):
    from huggingface_hub import HfApi

    from instrl_trl.cli.generate import main

    HfApi().create_repo("user/policy-on-hub")
    HfApi().upload_folder(folder_path=tiny_policy, repo_id="user/policy-on-hub")
    quickstart_seeds.select(range(8)).push_to_hub("user/seeds")

    config = make_config(tmp_path, "user/policy-on-hub", dataset_name="user/seeds", max_seeds=None)
    main(config)
    rows = read_rows(config.output_dir)
    assert rows and {row["seed_index"] for row in rows} <= set(range(8))
    card = (Path(config.output_dir) / "README.md").read_text()
    assert "user/seeds" in card and "[user/policy-on-hub](https://huggingface.co/user/policy-on-hub)" in card


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_shard_is_named_and_the_same_command_restores_its_rows(
    damage, tiny_policy, quickstart_seeds, tmp_path, caplog
):
    # Issue 22: a cut shard failed every rerun with "Parquet magic bytes not found" and no file named; a deleted one
    # lost its seeds' rows for good, since its progress line still marked them done
    expected = make_config(tmp_path / "uninterrupted", tiny_policy, shard_size=4)
    generate_dataset(expected, quickstart_seeds)
    config = make_config(tmp_path, tiny_policy, shard_size=4)
    generate_dataset(config, quickstart_seeds)
    shards = list_shards(config.output_dir)
    assert len(shards) >= 3
    damaged = shards[1]  # from the middle: a new shard must not take the name of a later one
    if damage == "truncate":
        damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    else:
        damaged.unlink()

    with caplog.at_level("WARNING"):
        generate_dataset(config, quickstart_seeds)
    assert str(damaged) in caplog.text
    if damage == "truncate":
        assert damaged.with_name(damaged.name + ".unreadable").is_file()

    def key(row: dict) -> tuple:
        return row["seed_index"], row["instruction"], row["response"]

    assert sorted(map(key, read_rows(config.output_dir))) == sorted(map(key, read_rows(expected.output_dir)))


def test_a_bug_keeps_its_own_traceback(tiny_policy, quickstart_seeds, tmp_path, monkeypatch):
    # Only what a run meets in the world (a failing backend, a full disk) becomes the one-line "Generation stopped"
    # error; a bug surfaces as itself, with its traceback, instead of a message that hides where it happened
    from instrl_trl.generation import shards

    def broken_add(self, rows, finished_seed_indices):
        raise TypeError("a bug in the writer")

    monkeypatch.setattr(shards.ShardWriter, "add", broken_add)
    with pytest.raises(TypeError, match="a bug in the writer"):
        generate_dataset(make_config(tmp_path, tiny_policy), quickstart_seeds)
