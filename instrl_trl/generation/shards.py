"""
Append-only parquet shards with progress markers, so that a killed run resumes without losing or repeating a row.

Layout under `output_dir`:

```
data/rank-00000-shard-00000.parquet   rows, written to a temporary name, then renamed (a shard on disk is complete)
progress/rank-00000.jsonl             one line per committed shard: the seed indices it finished, the shard's name and
                                      the policy's state after them (a policy that learns as it generates, `bandit`)
```

A seed is *done* once the shard holding its rows (possibly none) is renamed into place and its progress line is
written. On resume, the done seeds are those named by progress lines whose shard is still there and readable, or found
in the shards (the process may die between the rename and the progress line); the rest are processed again, and the
response cache answers their queries without paying twice. A shard that cannot be read (cut short, or damaged) is
renamed `*.parquet.unreadable`, with a warning naming it, and its seeds are made again: a missing or unreadable shard
never leaves its seeds marked done.

A policy that learns as it generates (`bandit`) makes rows that depend on every verdict before them, so its state is
committed with the seeds it has seen: in the progress line, and in the shard's parquet metadata beside the seeds the
shard finished (`instrl_trl.policy_state`, `instrl_trl.finished_seeds`). When the process died between a shard's
rename and its progress line, the next writer writes that line from the shard (and cuts off a line cut short), so the
last progress line is always the last commit, and [`ShardWriter.policy_state`] the state a resumed run starts from.
"""

import json
import logging
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


logger = logging.getLogger(__name__)


DATA_DIR = "data"
PROGRESS_DIR = "progress"
UNREADABLE_SUFFIX = ".unreadable"
_SHARD_INDEX = re.compile(r"^rank-\d{5}-shard-(\d{5})\.parquet")
# A shard's own record of its commit, for the progress line a kill may have left unwritten
FINISHED_SEEDS_KEY, POLICY_STATE_KEY = b"instrl_trl.finished_seeds", b"instrl_trl.policy_state"


def shard_name(rank: int, index: int) -> str:
    return f"rank-{rank:05d}-shard-{index:05d}.parquet"


def list_shards(output_dir: str | os.PathLike, rank: int | None = None) -> list[Path]:
    """Complete shards, in writing order (all ranks when `rank` is None)."""
    pattern = "rank-*-shard-*.parquet" if rank is None else f"rank-{rank:05d}-shard-*.parquet"
    return sorted((Path(output_dir) / DATA_DIR).glob(pattern))


def check_shard_columns(output_dir: str | os.PathLike, columns: list[str]) -> None:
    """
    Raises a `ValueError` naming the first shard of `output_dir` whose columns are not `columns` (in order), the
    columns it lacks or adds, and the way out. Only the shards' footers are read.
    """
    for shard in list_shards(output_dir):
        try:
            found = pq.read_schema(shard).names
        except (OSError, pa.ArrowException):
            continue  # its own rank sets it aside and makes its seeds again (`set_aside_unreadable_shards`)
        if found != columns:
            missing, extra = [c for c in columns if c not in found], [c for c in found if c not in columns]
            raise ValueError(
                f"The shard {shard} has the columns {found}, not the {columns} this version writes (missing: "
                f"{missing or 'none'}; not written any more: {extra or 'none'}). It was written by another version of "
                "instrl-trl, and resuming would mix two row layouts in one dataset. Set a new `output_dir`, or pass "
                "`--overwrite_output_dir` to delete the earlier rows and start afresh."
            )


def set_aside_unreadable_shards(output_dir: str | os.PathLike, rank: int) -> list[Path]:
    """
    Renames each shard of `rank` that cannot be read back (a file cut short or damaged: "Parquet magic bytes not
    found") to `<name>.unreadable`, warning with its path; returns the new paths. Its seeds are then not done, and
    the same command makes them again.
    """
    set_aside = []
    for shard in list_shards(output_dir, rank):
        try:
            pq.read_table(shard, columns=["seed_index"])
        except (OSError, pa.ArrowException) as error:
            aside = shard.with_name(shard.name + UNREADABLE_SUFFIX)
            os.replace(shard, aside)
            logger.warning(
                f"The shard {shard} cannot be read ({error}); it is kept as {aside} and its seeds are made again by "
                "this run. Delete the `.unreadable` file once the run has finished."
            )
            set_aside.append(aside)
    return set_aside


class ShardWriter:
    r"""
    Buffers rows and writes them as parquet shards of at most `shard_size` rows.

    Args:
        output_dir (`str`):
            The generation's output folder.
        rank (`int`, *optional*, defaults to `0`):
            Process index; each rank writes its own shards and progress file.
        shard_size (`int`, *optional*, defaults to `1000`):
            Rows per shard.
        schema (`pyarrow.Schema`, *optional*):
            Fixed schema of the rows, so that every shard reads back as one dataset. Shards already in `output_dir`
            (any rank) with other columns, written by another version, raise a `ValueError`: the rows of both could
            not be read back as one dataset.
    """

    def __init__(self, output_dir: str, rank: int = 0, shard_size: int = 1000, schema: pa.Schema | None = None):
        self.output_dir = Path(output_dir)
        self.rank = rank
        self.shard_size = shard_size
        self.schema = schema
        if schema is not None:
            check_shard_columns(output_dir, schema.names)
        (self.output_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
        (self.output_dir / PROGRESS_DIR).mkdir(parents=True, exist_ok=True)
        for leftover in (self.output_dir / DATA_DIR).glob(f".rank-{rank:05d}-*.tmp"):
            leftover.unlink()  # a shard that was being written when the process died: its seeds are not done
        set_aside_unreadable_shards(output_dir, rank)
        self.progress_path = self.output_dir / PROGRESS_DIR / f"rank-{rank:05d}.jsonl"
        self._repair_progress()
        # After the highest index ever used (set-aside shards included), never after the count: with a shard missing
        # from the middle, the count would name a shard that exists and overwrite its rows
        used = [
            int(match[1])
            for path in (self.output_dir / DATA_DIR).glob(f"rank-{rank:05d}-shard-*")
            if (match := _SHARD_INDEX.match(path.name))
        ]
        self.next_index = max(used, default=-1) + 1
        self._rows: list[dict] = []
        self._finished_seeds: list[int] = []
        self._policy_state: str | None = None  # JSON, as of the last `add`

    def _progress(self) -> list[dict]:
        """The progress lines up to the first one that does not parse (a line cut short by a kill)."""
        lines = []
        if self.progress_path.exists():
            for line in self.progress_path.read_text().splitlines():
                try:
                    progress = json.loads(line)
                except json.JSONDecodeError:
                    break
                if not isinstance(progress, dict) or "seed_indices" not in progress:
                    break
                lines.append(progress)
        return lines

    def _repair_progress(self) -> None:
        """
        Cuts off a progress line cut short by a kill, and writes the missing line of each shard renamed after the last
        progress line (the process died in between), from the shard itself: its seeds and its policy state. Then the
        last line is the last commit, and lines appended by this writer are read back whole.
        """
        if self.progress_path.exists():
            text = self.progress_path.read_text()
            if text and not text.endswith("\n"):
                self.progress_path.write_text(text[: text.rfind("\n") + 1])
        named = [_SHARD_INDEX.match(line["shard"]) for line in self._progress() if line.get("shard")]
        last_named = max((int(match[1]) for match in named if match), default=-1)
        for shard in list_shards(self.output_dir, self.rank):
            if int(_SHARD_INDEX.match(shard.name)[1]) <= last_named:
                continue
            metadata = pq.read_schema(shard).metadata or {}
            if FINISHED_SEEDS_KEY in metadata:
                seed_indices = json.loads(metadata[FINISHED_SEEDS_KEY])  # those without a row too
            else:  # written by an older version
                column = pq.read_table(shard, columns=["seed_index"]).column("seed_index").to_pylist()
                seed_indices = list(dict.fromkeys(column))
            state = metadata.get(POLICY_STATE_KEY)
            self._append_progress(seed_indices, shard.name, None if state is None else state.decode())

    def _append_progress(self, seed_indices: list[int], shard: str | None, policy_state: str | None) -> None:
        line = {"seed_indices": seed_indices, "shard": shard}
        if policy_state is not None:
            line["policy_state"] = json.loads(policy_state)
        with open(self.progress_path, "a") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def policy_state(self) -> dict | None:
        """
        The policy state of the last commit (`None` when nothing was committed, or by a policy without state): what a
        policy that learns as it generates had learned from the seeds done, for a resumed run to start from.
        """
        lines = self._progress()
        return lines[-1].get("policy_state") if lines else None

    def done_seed_indices(self) -> set[int]:
        """
        Seed indices already finished by this rank in earlier runs: those of a progress line whose shard (if it had
        rows) is on disk and readable, and those found in the shards.
        """
        done = set()
        readable = {path.name for path in list_shards(self.output_dir, self.rank)}
        for progress in self._progress():  # up to a line cut short by a kill: the shards below still tell the rest
            seed_indices, shard = progress["seed_indices"], progress.get("shard")  # older versions name no shard
            if shard is not None and shard not in readable:
                logger.warning(
                    f"The shard {self.output_dir / DATA_DIR / shard} is missing or unreadable: its "
                    f"{len(seed_indices)} seeds are made again."
                )
                continue
            done.update(seed_indices)
        for shard in list_shards(self.output_dir, self.rank):
            done.update(pq.read_table(shard, columns=["seed_index"]).column("seed_index").to_pylist())
        return done

    def add(self, rows: list[dict], finished_seed_indices: list[int], policy_state: dict | None = None) -> None:
        """
        Adds all the rows of some finished seeds. A shard is written once `shard_size` rows are buffered; it never
        splits a seed's rows, so a seed found in a shard is complete (a shard may pass `shard_size` by one batch).
        `policy_state` (JSON-serialisable) is what the policy had learned once these seeds were done; the next commit
        records the one of its last `add`, never a state that has seen seeds still to be committed.
        """
        self._rows.extend(rows)
        self._finished_seeds.extend(finished_seed_indices)
        if policy_state is not None:
            self._policy_state = json.dumps(policy_state, sort_keys=True)  # a copy: the policy goes on learning
        if len(self._rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Writes what is buffered, and the progress of its seeds (also those that produced no row)."""
        if not self._rows and not self._finished_seeds:
            return
        final = None
        if self._rows:
            final = self.output_dir / DATA_DIR / shard_name(self.rank, self.next_index)
            temporary = final.with_name(f".{final.stem}.tmp")
            table = pa.Table.from_pylist(self._rows, schema=self.schema)
            metadata = {**(table.schema.metadata or {}), FINISHED_SEEDS_KEY: json.dumps(self._finished_seeds).encode()}
            if self._policy_state is not None:
                metadata[POLICY_STATE_KEY] = self._policy_state.encode()
            table = table.replace_schema_metadata(metadata)
            pq.write_table(table, temporary)
            os.replace(temporary, final)  # atomic: a shard on disk is always complete
            self.next_index += 1
        self._append_progress(self._finished_seeds, None if final is None else final.name, self._policy_state)
        self._rows, self._finished_seeds = [], []
