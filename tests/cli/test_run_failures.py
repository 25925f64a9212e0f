"""
Runs that cannot succeed say so (issue 12), checked with real `instrl-trl` processes and a real local server
(`tests/backends/openai_server.py`): a dead endpoint stops the stage non-zero and marks no seed done; two runs on one
folder do not mix; a kill -9 during a checkpoint save does not break resuming.
"""

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from instrl_trl.generation.shards import PROGRESS_DIR, list_shards
from tests.backends.openai_server import OpenAIServer


REPO = Path(__file__).resolve().parents[2]


def generate_command(policy: str, output_dir: Path, server: OpenAIServer, num_seeds: int = 4) -> list[str]:
    rewriter = {"backend": "endpoint", "model": "m", "base_url": server.base_url, "max_retries": 1,
                "backoff_base": 0.01, "timeout": 90}  # fmt: skip
    return [
        sys.executable, "-m", "instrl_trl.cli", "generate", "--policy", policy, "--output_dir", str(output_dir),
        "--max_seeds", str(num_seeds), "--batch_size", str(num_seeds), "--rewriter", json.dumps(rewriter),
        "--keep_unverified", "true",
    ]  # fmt: skip


def done_seeds(output_dir: Path) -> set[int]:
    done = set()
    for progress in (output_dir / PROGRESS_DIR).glob("*.jsonl"):
        for line in progress.read_text().splitlines():
            done.update(json.loads(line)["seed_indices"])
    return done


def rows(output_dir: Path) -> list[tuple[int, str]]:
    return [
        (row["seed_index"], row["instruction"])
        for shard in list_shards(output_dir)
        for row in pq.read_table(shard, columns=["seed_index", "instruction"]).to_pylist()
    ]


def new_words_responder():
    """A rewriter that always adds new content words, so that the rules reviewer accepts its rewrites."""
    counter = itertools.count()

    def respond(messages):
        n = next(counter)
        return f"Describe seven distinct ways a harbour town number{n} could improve tram service in {100 + n} words."

    return respond


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dead_endpoint_stops_non_zero_and_the_same_command_resumes_once_it_works(tiny_policy, tmp_path):
    output_dir = tmp_path / "dataset"
    with OpenAIServer(faults=["500"] * 1000, responder=new_words_responder()) as server:
        command = generate_command(tiny_policy, output_dir, server)
        start = time.monotonic()
        failed = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
        assert failed.returncode != 0
        assert time.monotonic() - start < 120
        message = failed.stderr.strip().splitlines()[-1]
        assert "The rewriter failed 4 of its 4 queries" in message
        assert server.base_url in message and "last error: status 500" in message
        assert "are kept" in message and "run the same command again" in message
        assert done_seeds(output_dir) == set() and rows(output_dir) == []

        server.reset()  # the server works again
        fixed = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
        assert fixed.returncode == 0, fixed.stderr[-3000:]
        assert done_seeds(output_dir) == {0, 1, 2, 3}
        assert rows(output_dir)
        assert all(request.fault == "ok" for request in server.requests)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_second_run_on_the_same_folder_fails_fast_and_the_first_is_intact(tiny_policy, tmp_path):
    output_dir = tmp_path / "dataset"
    # One answer held until the second run is refused keeps the first run busy meanwhile
    with OpenAIServer(faults=["hold"], responder=new_words_responder()) as server:
        command = generate_command(tiny_policy, output_dir, server, num_seeds=6)
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (output_dir / "_run.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second could start"

        second = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode != 0
        assert f"in use by process {first.pid}" in second.stderr

        server.release()
        _, first_stderr = first.communicate(timeout=240)
        assert first.returncode == 0, first_stderr[-3000:]
    assert done_seeds(output_dir) == set(range(6))
    written = rows(output_dir)
    assert written and len(written) == len(set(written))  # nothing repeated
    assert not (output_dir / "_run.lock").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_train_policy_killed_while_saving_a_checkpoint_resumes_from_the_previous_one(tiny_backbone, tmp_path):
    output_dir = tmp_path / "policy"

    def train(max_steps: int) -> subprocess.CompletedProcess:
        command = [
            sys.executable, "-m", "instrl_trl.cli", "train-policy", "--config",
            str(REPO / "recipes" / "quickstart" / "policy.yaml"), "--model_name_or_path", tiny_backbone,
            "--output_dir", str(output_dir), "--max_steps", str(max_steps), "--save_steps", "2",
            "--save_total_limit", "2", "--per_device_train_batch_size", "8", "--bf16", "false",
            "--disable_tqdm", "true",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=400, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    train(4)
    # What a kill -9 in the middle of `_save_checkpoint` leaves: the folder, with the model config only
    torn = output_dir / "checkpoint-4"
    for path in torn.iterdir():
        if path.name != "config.json":
            path.unlink()

    resumed = train(6)
    log = resumed.stdout + resumed.stderr
    assert f"Skipped the incomplete checkpoint {torn}" in log
    assert f"Resuming from the last checkpoint in {output_dir}: {output_dir / 'checkpoint-2'}" in log
    state = json.loads((output_dir / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert (output_dir / "incomplete-checkpoint-4" / "config.json").exists()
    assert os.path.exists(output_dir / "model.safetensors")
