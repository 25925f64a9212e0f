"""Several processes, one dataset (issue 21): `generate` under `accelerate launch` with 2 CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from instrl_trl.generation.shards import list_shards


REPO = Path(__file__).resolve().parents[2]


def rows(output_dir: Path) -> list[tuple[int, str]]:
    return sorted(
        (row["seed_index"], row["instruction"])
        for shard in list_shards(output_dir)
        for row in pq.read_table(shard, columns=["seed_index", "instruction"]).to_pylist()
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_duplicate_made_on_two_ranks_is_kept_once_as_in_one_process(tmp_path):
    # Each seed twice in a row: with 2 processes, seed 2k goes to rank 0 and its copy 2k+1 to rank 1, and a fixed
    # operation sequence rewrites both the same way. One process drops the copies; two must drop the same ones.
    texts = ["Describe a city you would like to visit.", "Write a short poem about autumn.",
             "Explain how a bicycle works.", "List three ways to save water at home."]  # fmt: skip
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"instruction": text}) + "\n" for text in texts for _ in range(2)))
    arguments = ["-m", "instrl_trl.cli", "generate", "--config", "recipes/quickstart/generate.yaml", "--policy",
                 "sequence:deepening", "--dataset_name", str(seeds), "--dedup_threshold", "1.0",
                 "--keep_unverified", "true"]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}

    def run(command: list[str]) -> None:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=540, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    one = tmp_path / "one"
    run([sys.executable, *arguments, "--output_dir", str(one)])
    two = tmp_path / "two"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    run([*launch, *arguments, "--output_dir", str(two)])

    assert {path.name.split("-shard")[0] for path in list_shards(two)} == {"rank-00000", "rank-00001"}
    expected = rows(one)
    assert expected and rows(two) == expected
    assert len({instruction for _, instruction in expected}) == len(expected)  # each instruction once
