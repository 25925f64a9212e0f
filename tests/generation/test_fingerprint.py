"""A rerun of `generate` into an existing folder resumes the same run only (issue 12)."""

import json
import shutil

import pytest

from instrl_trl.generation import DatasetGenerationConfig
from instrl_trl.generation.builder import run_generate
from instrl_trl.runs.folder import RunFingerprintError


def seeds_file(tmp_path, name, instructions):
    path = tmp_path / name
    path.write_text("".join(json.dumps({"instruction": text}) + "\n" for text in instructions))
    return str(path)


def config(tmp_path, policy, dataset_name, **overrides):
    return DatasetGenerationConfig(
        policy=policy, output_dir=str(tmp_path / "dataset"), dataset_name=dataset_name, dedup_threshold=1.0,
        greedy=False, keep_intermediate=True, keep_unverified=True, **overrides,
    )  # fmt: skip


def test_another_seed_file_or_policy_is_refused_and_overwrite_starts_afresh(tiny_policy, tmp_path):
    first = seeds_file(tmp_path, "a.jsonl", ["Write a poem about the sea.", "Name three rivers in Spain."])
    other = seeds_file(tmp_path, "b.jsonl", ["Plan a trip to Lisbon.", "Explain how tides work."])
    run_generate(config(tmp_path, tiny_policy, first))
    card = (tmp_path / "dataset" / "README.md").read_text()
    resumed = run_generate(config(tmp_path, tiny_policy, first))  # the same recipe resumes: nothing left to do
    assert resumed.num_seeds == 0 and resumed.num_skipped_seeds == 2

    with pytest.raises(RunFingerprintError, match=r"`seeds`: \"\w+\" before, \"\w+\" now") as info:
        run_generate(config(tmp_path, tiny_policy, other))
    assert "`policy`" not in str(info.value) and "--overwrite_output_dir" in str(info.value)
    other_policy = shutil.copytree(tiny_policy, tmp_path / "other-policy")
    with pytest.raises(RunFingerprintError, match="`policy`") as info:
        run_generate(config(tmp_path, str(other_policy), first))
    assert "`seeds`" not in str(info.value)
    assert (tmp_path / "dataset" / "README.md").read_text() == card  # the refused runs changed nothing

    summary = run_generate(config(tmp_path, tiny_policy, other, overwrite_output_dir=True))
    assert summary.num_skipped_seeds == 0 and summary.num_seeds == 2  # the first run's progress was removed
    progress = (tmp_path / "dataset" / "progress" / "rank-00000.jsonl").read_text().splitlines()
    assert [json.loads(line)["seed_indices"] for line in progress] == [[0, 1]]
    assert json.loads((tmp_path / "dataset" / "_run_fingerprint.json").read_text())["policy"] == tiny_policy


def test_an_empty_seed_file_is_a_clear_error(tiny_policy, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.jsonl"):
        run_generate(config(tmp_path, tiny_policy, str(empty)))


def test_resuming_over_shards_without_the_evolutions_column_is_refused(tmp_path):
    # Shards of a version before `evolutions`: the recipe is the same, but the rows could not be read as one dataset
    import pyarrow.parquet as pq

    from instrl_trl.generation.shards import list_shards

    seeds = seeds_file(tmp_path, "a.jsonl", ["Write a poem about the sea.", "Explain how tides work."])
    run_generate(config(tmp_path, "uniform", seeds))
    shards = list_shards(tmp_path / "dataset")
    assert shards
    for shard in shards:
        pq.write_table(pq.read_table(shard).drop_columns(["evolutions"]), shard)

    with pytest.raises(ValueError, match=r"missing: \['evolutions'\]") as info:
        run_generate(config(tmp_path, "uniform", seeds))
    assert "--overwrite_output_dir" in str(info.value)
    run_generate(config(tmp_path, "uniform", seeds, overwrite_output_dir=True))
    assert all("evolutions" in pq.read_schema(shard).names for shard in list_shards(tmp_path / "dataset"))
