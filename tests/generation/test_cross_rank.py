"""Duplicates made on two ranks are kept once, in seed order."""

import pyarrow.parquet as pq

from instrl_trl.generation.cross_rank import deduplicate_across_ranks
from instrl_trl.generation.filters import Deduplicator
from instrl_trl.generation.rows import ROW_SCHEMA
from instrl_trl.generation.shards import ShardWriter, list_shards


def row(seed_index: int, instruction: str) -> dict:
    return dict.fromkeys(ROW_SCHEMA.names) | {"seed_index": seed_index, "instruction": instruction}


def test_a_duplicate_on_two_ranks_is_kept_for_the_earlier_seed(tmp_path):
    # Rank 0 has the even seeds, rank 1 the odd ones, as `accelerate launch` splits them; each deduplicated its own
    ranks = {
        0: [(0, "Name a river."), (2, "List three lakes!"), (4, "Plan a trip.")],
        1: [(1, "Describe a glacier."), (3, "list three LAKES"), (5, "Name a river"), (5, "Name a mountain.")],
    }
    for rank, rows in ranks.items():
        writer = ShardWriter(str(tmp_path), rank, shard_size=2, schema=ROW_SCHEMA)
        for seed_index, instruction in rows:
            writer.add([row(seed_index, instruction)], [seed_index])
        writer.flush()

    assert deduplicate_across_ranks(tmp_path, Deduplicator(threshold=1.0)) == 2
    remaining = sorted(
        (r["seed_index"], r["instruction"])
        for shard in list_shards(tmp_path)
        for r in pq.read_table(shard).to_pylist()
    )
    # seed 3 duplicates seed 2 (rank 0) and seed 5's first row duplicates seed 0: the earlier seeds keep theirs
    expected = [(0, "Name a river."), (1, "Describe a glacier."), (2, "List three lakes!"), (4, "Plan a trip."),
                (5, "Name a mountain.")]  # fmt: skip
    assert remaining == expected
    # Done markers are untouched, and a second pass drops nothing
    assert ShardWriter(str(tmp_path), 1, schema=ROW_SCHEMA).done_seed_indices() == {1, 3, 5}
    assert deduplicate_across_ranks(tmp_path, Deduplicator(threshold=1.0)) == 0
