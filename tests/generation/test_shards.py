import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from instrl_trl.constraints import Constraint
from instrl_trl.generation.evolve import Candidate
from instrl_trl.generation.responses import AnsweredCandidate
from instrl_trl.generation.rows import ROW_SCHEMA, to_row
from instrl_trl.generation.shards import ShardWriter, list_shards, shard_name


def make_row(seed_index, step=0, constraints=(), verified=None):
    candidate = Candidate(
        instruction=f"Describe topic number {seed_index}, variant {step}.",
        seed=f"Describe topic number {seed_index}.",
        seed_index=seed_index,
        operations=("deepening",) * (step + 1),
        evolutions=1 + step // 2,  # one of every two operations accepted
        reward=0.5 * (step + 1),
        constraints=tuple(constraints),
    )
    return to_row(AnsweredCandidate(candidate, f"Answer {seed_index}.{step}", verified, attempts=1))


def rows_of(seed_indices, per_seed=1):
    return [make_row(index, step) for index in seed_indices for step in range(per_seed)]


def progress_lines(output_dir, rank=0):
    path = output_dir / "progress" / f"rank-{rank:05d}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def seed_indices_in(shard):
    return pq.read_table(shard, columns=["seed_index"]).column("seed_index").to_pylist()


def test_rows_are_buffered_until_a_shard_is_full(tmp_path):
    writer = ShardWriter(str(tmp_path), shard_size=3, schema=ROW_SCHEMA)
    writer.add(rows_of([0, 1]), [0, 1])
    assert list_shards(tmp_path) == []
    assert not (tmp_path / "progress" / "rank-00000.jsonl").exists()

    writer.add(rows_of([2]), [2])
    shards = list_shards(tmp_path)
    assert [shard.name for shard in shards] == ["rank-00000-shard-00000.parquet"]
    assert shard_name(0, 0) == "rank-00000-shard-00000.parquet"
    assert seed_indices_in(shards[0]) == [0, 1, 2]
    assert progress_lines(tmp_path) == [{"seed_indices": [0, 1, 2], "shard": "rank-00000-shard-00000.parquet"}]
    assert writer.next_index == 1
    assert list((tmp_path / "data").glob("*.tmp")) == []
    assert list((tmp_path / "data").glob(".*")) == []


def test_a_shard_never_splits_the_rows_of_one_batch(tmp_path):
    writer = ShardWriter(str(tmp_path), shard_size=2, schema=ROW_SCHEMA)
    writer.add(rows_of([0]), [0])
    writer.add(rows_of([1, 2], per_seed=2), [1, 2])  # 5 rows buffered: written together, past shard_size
    writer.add(rows_of([3], per_seed=3), [3])  # 3 rows in one batch: one shard of 3
    shards = list_shards(tmp_path)
    assert [seed_indices_in(shard) for shard in shards] == [[0, 1, 1, 2, 2], [3, 3, 3]]
    assert progress_lines(tmp_path) == [
        {"seed_indices": [0, 1, 2], "shard": "rank-00000-shard-00000.parquet"},
        {"seed_indices": [3], "shard": "rank-00000-shard-00001.parquet"},
    ]


def test_flush_writes_the_rest_and_progress_of_seeds_without_rows(tmp_path):
    writer = ShardWriter(str(tmp_path), shard_size=100, schema=ROW_SCHEMA)
    writer.add(rows_of([0]), [0, 1])  # seed 1 produced no row
    writer.flush()
    assert [seed_indices_in(shard) for shard in list_shards(tmp_path)] == [[0]]
    assert progress_lines(tmp_path) == [{"seed_indices": [0, 1], "shard": "rank-00000-shard-00000.parquet"}]

    writer.add([], [2, 3])  # a batch with no row at all: no shard, but a progress line
    writer.flush()
    assert len(list_shards(tmp_path)) == 1
    assert progress_lines(tmp_path)[-1] == {"seed_indices": [2, 3], "shard": None}
    assert writer.done_seed_indices() == {0, 1, 2, 3}

    writer.flush()  # nothing buffered: nothing written
    assert len(progress_lines(tmp_path)) == 2


def test_done_seeds_include_those_in_shards_without_a_progress_line(tmp_path):
    writer = ShardWriter(str(tmp_path), shard_size=2, schema=ROW_SCHEMA)
    writer.add(rows_of([0, 1]), [0, 1])
    writer.add(rows_of([2, 3]), [2, 3, 4])  # seed 4 has no row
    progress = tmp_path / "progress" / "rank-00000.jsonl"
    # the process died between the second shard's rename and its progress line
    lines = progress.read_text().splitlines()
    progress.write_text(lines[0] + "\n")

    resumed = ShardWriter(str(tmp_path), shard_size=2, schema=ROW_SCHEMA)
    # seed 4 had no row and its progress line is lost, but the shard records the seeds it finished: the line is back
    assert resumed.done_seed_indices() == {0, 1, 2, 3, 4}
    assert progress_lines(tmp_path)[-1] == {"seed_indices": [2, 3, 4], "shard": shard_name(0, 1)}


def test_the_policy_state_of_the_last_commit_comes_back(tmp_path):
    # A learning policy's state is committed with the seeds it has seen, never with seeds still buffered
    writer = ShardWriter(str(tmp_path), shard_size=2, schema=ROW_SCHEMA)
    assert writer.policy_state() is None
    writer.add(rows_of([0, 1]), [0, 1], policy_state={"counts": [1]})
    writer.add(rows_of([2]), [2], policy_state={"counts": [2]})  # buffered: not committed
    assert ShardWriter(str(tmp_path), shard_size=2, schema=ROW_SCHEMA).policy_state() == {"counts": [1]}
    assert progress_lines(tmp_path)[-1]["policy_state"] == {"counts": [1]}

    writer.add([], [3], policy_state={"counts": [3]})
    writer.flush()
    writer.add([], [4], policy_state={"counts": [4]})  # a commit without a shard
    writer.flush()
    assert ShardWriter(str(tmp_path), shard_size=2, schema=ROW_SCHEMA).policy_state() == {"counts": [4]}


def test_the_policy_state_of_a_shard_whose_progress_line_was_lost_comes_back(tmp_path):
    writer = ShardWriter(str(tmp_path), shard_size=1, schema=ROW_SCHEMA)
    writer.add(rows_of([0]), [0], policy_state={"step": 1})
    writer.add(rows_of([1]), [1, 2], policy_state={"step": 2})
    progress = tmp_path / "progress" / "rank-00000.jsonl"
    lines = progress.read_text().splitlines()
    progress.write_text(lines[0] + "\n" + lines[1][:20])  # the kill cut the second line short

    resumed = ShardWriter(str(tmp_path), shard_size=1, schema=ROW_SCHEMA)
    assert resumed.policy_state() == {"step": 2}
    assert resumed.done_seed_indices() == {0, 1, 2}
    resumed.add(rows_of([3]), [3], policy_state={"step": 3})
    # the cut line is gone and the shard's own record took its place: every line reads back, the new one last
    assert [line["seed_indices"] for line in progress_lines(tmp_path)] == [[0], [1, 2], [3]]
    assert ShardWriter(str(tmp_path), shard_size=1, schema=ROW_SCHEMA).policy_state() == {"step": 3}


def test_a_truncated_progress_line_is_tolerated(tmp_path):
    writer = ShardWriter(str(tmp_path), shard_size=1, schema=ROW_SCHEMA)
    writer.add([], [7])
    writer.flush()
    writer.add(rows_of([8]), [8])
    progress = tmp_path / "progress" / "rank-00000.jsonl"
    with open(progress, "a") as f:
        f.write('{"seed_indices": [9, 1')  # cut short by a kill
    resumed = ShardWriter(str(tmp_path), shard_size=1, schema=ROW_SCHEMA)
    assert resumed.done_seed_indices() == {7, 8}


def test_leftover_temporary_shards_are_removed_and_numbering_continues(tmp_path):
    writer = ShardWriter(str(tmp_path), shard_size=1, schema=ROW_SCHEMA)
    writer.add(rows_of([0]), [0])
    writer.add(rows_of([1]), [1])
    leftover = tmp_path / "data" / ".rank-00000-shard-00002.tmp"
    leftover.write_bytes(b"half a parquet file")
    other_rank = tmp_path / "data" / ".rank-00001-shard-00000.tmp"
    other_rank.write_bytes(b"another rank's shard in progress")

    resumed = ShardWriter(str(tmp_path), shard_size=1, schema=ROW_SCHEMA)
    assert not leftover.exists()
    assert other_rank.exists()  # each rank cleans only its own
    assert resumed.next_index == 2
    assert resumed.done_seed_indices() == {0, 1}
    resumed.add(rows_of([2]), [2])
    assert [shard.name for shard in list_shards(tmp_path)] == [shard_name(0, i) for i in range(3)]


def test_two_ranks_write_separate_files(tmp_path):
    rank0 = ShardWriter(str(tmp_path), rank=0, shard_size=1, schema=ROW_SCHEMA)
    rank1 = ShardWriter(str(tmp_path), rank=1, shard_size=1, schema=ROW_SCHEMA)
    rank0.add(rows_of([0]), [0])
    rank1.add(rows_of([1]), [1])
    rank0.add(rows_of([2]), [2])
    assert [shard.name for shard in list_shards(tmp_path, rank=0)] == [shard_name(0, 0), shard_name(0, 1)]
    assert [shard.name for shard in list_shards(tmp_path, rank=1)] == [shard_name(1, 0)]
    assert len(list_shards(tmp_path)) == 3
    assert progress_lines(tmp_path, rank=1) == [{"seed_indices": [1], "shard": "rank-00001-shard-00000.parquet"}]
    assert rank0.done_seed_indices() == {0, 2}
    assert rank1.done_seed_indices() == {1}


def test_shards_read_back_as_one_dataset(tmp_path):
    writer = ShardWriter(str(tmp_path), shard_size=2, schema=ROW_SCHEMA)
    lowercase = Constraint("change_case:english_lowercase", {})
    words = Constraint("length_constraints:number_words", {"num_words": 50, "relation": "less than"})
    writer.add([make_row(0, constraints=[lowercase, words], verified=True)], [0])
    writer.add([make_row(1, step=1)], [1])  # no constraints: an empty list and a null `verified`
    writer.add([make_row(2, constraints=[lowercase], verified=False)], [2])
    writer.flush()

    files = [str(shard) for shard in list_shards(tmp_path)]
    assert len(files) == 2
    dataset = load_dataset("parquet", data_files=files, split="train")
    assert dataset.column_names == ROW_SCHEMA.names
    assert len(dataset) == 3
    first, second, third = dataset
    assert first["instruction"] == "Describe topic number 0, variant 0."
    assert first["messages"] == [
        {"role": "user", "content": "Describe topic number 0, variant 0."},
        {"role": "assistant", "content": "Answer 0.0"},
    ]
    assert first["constraints"] == [
        {"instruction_id": "change_case:english_lowercase", "kwargs": "{}"},
        {"instruction_id": "length_constraints:number_words", "kwargs": '{"num_words": 50, "relation": "less than"}'},
    ]
    assert first["verified"] is True
    assert second["operations"] == ["deepening", "deepening"]
    assert (second["depth"], second["evolutions"]) == (2, 1)
    assert second["reward"] == 1.0
    assert second["constraints"] == []
    assert second["verified"] is None
    assert third["verified"] is False
    assert [row["seed_index"] for row in dataset] == [0, 1, 2]
    assert [row["attempts"] for row in dataset] == [1, 1, 1]


def test_shards_of_another_row_layout_are_refused_naming_the_columns(tmp_path):
    # A shard written before the `evolutions` column existed: resuming into it would mix two layouts
    writer = ShardWriter(str(tmp_path), rank=1, shard_size=1, schema=ROW_SCHEMA)
    writer.add(rows_of([0]), [0])
    old_schema = ROW_SCHEMA.remove(ROW_SCHEMA.get_field_index("evolutions"))
    old = [{name: value for name, value in row.items() if name != "evolutions"} for row in rows_of([1])]
    pq.write_table(pa.Table.from_pylist(old, schema=old_schema), tmp_path / "data" / shard_name(1, 1))

    with pytest.raises(ValueError, match=r"missing: \['evolutions'\]") as info:
        ShardWriter(str(tmp_path), rank=0, schema=ROW_SCHEMA)  # another rank's shards count too
    assert shard_name(1, 1) in str(info.value) and "--overwrite_output_dir" in str(info.value)
    ShardWriter(str(tmp_path), rank=0)  # without a schema to keep, nothing is checked
