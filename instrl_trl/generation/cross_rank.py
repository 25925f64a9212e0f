"""
Duplicates made on two ranks. Under `accelerate launch`, each process deduplicates its own seeds only; once every
process is done, the main process reads all the shards and drops, in seed order, each row that duplicates a row of an
earlier seed (exactly, or above the near-duplicate threshold), so that the dataset keeps one of them whatever the
number of processes' timing. Shards that lose rows are rewritten under a temporary name and renamed into place, so a
shard on disk is always complete; running the pass again drops nothing more.
"""

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .filters import Deduplicator
from .shards import list_shards


def deduplicate_across_ranks(output_dir: str | os.PathLike, deduplicator: Deduplicator) -> int:
    r"""
    Drops the rows of `output_dir`'s shards (all ranks) that duplicate a row of an earlier seed, as `deduplicator`
    (empty, with the run's threshold) judges them. Rows are taken in seed order (a seed's rows in the order written).

    Returns:
        `int`: the number of rows dropped.
    """
    shards = list_shards(output_dir)
    tables = {shard: pq.read_table(shard) for shard in shards}
    # (seed_index, shard, row) in seed order; a seed's rows are all in one shard, in order
    order = sorted(
        (seed_index, str(shard), row)
        for shard, table in tables.items()
        for row, seed_index in enumerate(table.column("seed_index").to_pylist())
    )
    instructions = [tables[Path(shard)].column("instruction")[row].as_py() for _, shard, row in order]
    keep = _keep_mask(instructions, deduplicator)
    dropped: dict[str, list[int]] = {}
    for (_, shard, row), keep_row in zip(order, keep, strict=True):
        if not keep_row:
            dropped.setdefault(shard, []).append(row)
    for shard, rows in dropped.items():
        table, rows = tables[Path(shard)], set(rows)
        mask = pa.array([row not in rows for row in range(table.num_rows)])
        temporary = Path(shard).with_name(f".{Path(shard).stem}.tmp")
        pq.write_table(table.filter(mask), temporary)
        os.replace(temporary, shard)
    return sum(len(rows) for rows in dropped.values())


class _Text:
    """What [`Deduplicator.filter`] reads of a candidate: its `instruction`."""

    def __init__(self, instruction: str):
        self.instruction = instruction


def _keep_mask(instructions: list[str], deduplicator: Deduplicator) -> list[bool]:
    items = [_Text(text) for text in instructions]
    kept = {id(item) for item in deduplicator.filter(items)}
    return [id(item) in kept for item in items]
