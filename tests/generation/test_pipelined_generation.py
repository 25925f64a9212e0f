"""The pipelined stage against an endpoint: many episodes in flight, rows that do not depend on the server's timing."""

import os
import signal
import subprocess
import sys
import time

import pytest
from datasets import load_dataset

from instrl_trl.backends.server_load import ClientLoad, ServerLoad
from instrl_trl.generation import DatasetGenerationConfig, generate_dataset
from instrl_trl.generation.pipeline import server_waiting_messages
from instrl_trl.generation.policies import ActPolicy
from instrl_trl.generation.shards import list_shards
from tests.backends.openai_server import OpenAIServer, evolving


def read_rows(output_dir) -> list[dict]:
    files = [str(path) for path in list_shards(output_dir)]
    return load_dataset("parquet", data_files=files, split="train").to_list() if files else []


def endpoint_role(server: OpenAIServer, max_concurrency: int = 8, **settings) -> dict:
    return {"backend": "endpoint", "model": "test-model", "base_url": server.base_url,
            "max_concurrency": max_concurrency, "max_retries": 0, **settings}  # fmt: skip


def make_config(output_dir, server: OpenAIServer, **overrides) -> DatasetGenerationConfig:
    kwargs = {
        "policy": "uniform",
        "output_dir": str(output_dir),
        "rewriter": endpoint_role(server),
        "expert": endpoint_role(server),
        "max_operations": 3,
        "batch_size": 4,
        "shard_size": 5,
        "keep_intermediate": True,
        "keep_unverified": True,
        "dedup_threshold": 1.0,  # exact duplicates only: no embedding model to load here
        "max_seeds": 24,
    }
    return DatasetGenerationConfig(**{**kwargs, **overrides})


@pytest.mark.parametrize("policy", ["uniform", "ppo"])
def test_rows_do_not_depend_on_the_servers_timing(quickstart_seeds, tmp_path, request, policy):
    # Two servers whose latencies spread (log-normal, sigma 1) with other draws: the queries come back in other
    # orders, so episodes end, and reach the expert, in other orders. The rows, and their order, must not change.
    # A PPO policy acts on whichever episodes are ready together: its forward passes are shared by other states.
    policy = request.getfixturevalue("tiny_policy") if policy == "ppo" else policy
    rows, servers = [], []
    for latency_seed in (1, 2):
        # Latencies well above the client's own time per request, even on a loaded machine: 8 in flight is the
        # server's doing, not a race the client may lose
        with OpenAIServer(responder=evolving, latency=0.25, latency_sigma=1.0, latency_seed=latency_seed) as server:
            config = make_config(tmp_path / f"run-{latency_seed}", server, policy=policy)
            summary = generate_dataset(config, quickstart_seeds)
            rows.append(read_rows(config.output_dir))
            servers.append(server)
            assert summary.num_failed_seeds == 0
    assert rows[0] == rows[1]
    assert len(rows[0]) > 24  # most episodes keep several instructions
    assert [row["seed_index"] for row in rows[0]] == sorted(row["seed_index"] for row in rows[0])
    assert all("Mention the" in row["instruction"] and row["response"].startswith("The answer") for row in rows[0])
    # Pipelined: the window (2 x max_concurrency episodes) kept the server's 8 slots filled, past batch_size (4)
    assert all(server.max_in_flight == 8 for server in servers)
    # ... and the episodes really finished in other orders: the servers saw their requests in other orders
    assert [r.body["messages"] for r in servers[0].requests] != [r.body["messages"] for r in servers[1].requests]


def test_lock_step_mode_is_kept(quickstart_seeds, tmp_path):
    # `pipelined: false` plays batches: never more requests in flight than a batch has episodes (one kept
    # instruction per episode, so the expert's batch is no larger)
    with OpenAIServer(responder=evolving, latency=0.01) as server:
        config = make_config(tmp_path / "lock-step", server, pipelined=False, keep_intermediate=False)
        generate_dataset(config, quickstart_seeds)
        assert read_rows(config.output_dir)
        assert server.max_in_flight <= 4


@pytest.mark.parametrize("client", ["fast", "slow"])
def test_a_run_that_keeps_the_server_waiting_says_so(quickstart_seeds, tmp_path, monkeypatch, caplog, client):
    # The client measures how full it kept each server's `max_concurrency`, as the server saw it. A policy that takes
    # 0.1 s per step while the server answers in 0.01 s keeps it mostly idle, and the run warns that this process held
    # the calls back (the slots were free while its loop worked); a fast client against a slower server (0.2 s) keeps
    # its 4 slots full and does not warn
    if client == "slow":
        act_episodes = ActPolicy.act_episodes

        def slow_act_episodes(self, setup, states, actors):
            time.sleep(0.1)
            return act_episodes(self, setup, states, actors)

        monkeypatch.setattr(ActPolicy, "act_episodes", slow_act_episodes)
    latency = 0.01 if client == "slow" else 0.2
    with OpenAIServer(responder=evolving, latency=latency) as server, caplog.at_level("WARNING"):
        role = endpoint_role(server, max_concurrency=4)
        summary = generate_dataset(
            make_config(tmp_path, server, rewriter=role, expert=role, max_seeds=16), quickstart_seeds
        )
    (load,) = summary.server_loads.values()
    assert load.requests == len(server.requests) and load.limit == 4  # the requests, not the cache's hits
    assert load.fill == pytest.approx(server.fill(4), abs=0.1)
    warnings = [record.message for record in caplog.records if record.name == "instrl_trl.generation.pipeline"]
    if client == "slow":
        assert load.fill < 0.5
        assert load.held_back > 0.5  # the slots were free while the loop slept in the policy
        assert len(warnings) == 1 and "kept the server waiting on this process" in warnings[0]
        assert "This process held the calls back" in warnings[0]
    else:
        assert load.fill > 0.8
        assert summary.client_load.waiting_share > 0.5
        assert not warnings


def test_a_server_kept_waiting_by_a_busier_one_is_named(quickstart_seeds, tmp_path, caplog):
    # The rewriter's server takes 2 queries at once, 0.1 s each; the expert's takes 4 and answers in 0.01 s. Episodes
    # queue for the rewriter, so the expert's server idles while this process mostly waits for answers: the warning
    # names the busier server as the cause, not this process
    with (
        OpenAIServer(responder=evolving, latency=0.1) as rewriter_server,
        OpenAIServer(responder=evolving, latency=0.01) as expert_server,
        caplog.at_level("WARNING"),
    ):
        config = make_config(
            tmp_path, rewriter_server, max_seeds=24,
            rewriter=endpoint_role(rewriter_server, max_concurrency=2),
            expert=endpoint_role(expert_server, max_concurrency=4),
        )  # fmt: skip
        summary = generate_dataset(config, quickstart_seeds)
        rewriter_url, expert_url = rewriter_server.base_url, expert_server.base_url
    assert summary.server_loads[rewriter_url].fill > 0.8
    assert summary.server_loads[expert_url].fill < 0.5
    assert summary.server_loads[expert_url].held_back < 0.5  # free while the loop waited for the rewriter's answers
    [warning] = [record.message for record in caplog.records if record.name == "instrl_trl.generation.pipeline"]
    assert warning.startswith(f"Generation kept the server waiting on this process: {expert_url}: ")
    assert "Its episodes had no more queries to send" in warning
    assert f"they waited on a busier server, {rewriter_url} (" in warning


@pytest.mark.parametrize("cores_busy", [0.4, 1.8])
def test_a_waiting_loop_on_full_cores_points_at_the_embedding_dedup(cores_busy):
    # Free slots while the loop waited, on 2 cores: with the cores full, the work beside the loop (the dedup's
    # embeddings, which finished seeds wait for) is named; with cores to spare, it is not
    now, cpu = [0.0], [0.0]
    load = ServerLoad(limit=4, clock=lambda: now[0])
    client = ClientLoad(clock=lambda: now[0], cpu_clock=lambda: cpu[0], cores=2, loads=[load])
    with client.waiting():
        for _ in range(16):
            load.start()
            now[0] += 1.0
            load.end()
    cpu[0] = cores_busy * now[0]
    client.stop()
    [message] = server_waiting_messages({"http://a/v1": load}, client)
    assert "0% of the slot-time left free passed while the loop worked" in message
    assert "Its episodes had no more queries to send" in message
    assert ("near-duplicate filter's embeddings, computed beside the loop on cores that were full" in message) is (
        cores_busy > 1.6
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_pipelined_run_resumes_to_the_same_rows(tmp_path):
    # The CLI in a subprocess with many queries in flight at a server, killed with SIGKILL once some shards are on
    # disk, then rerun: its rows must be an uninterrupted run's, in the same order (none lost, none repeated)
    with OpenAIServer(responder=evolving, latency=0.02, latency_sigma=0.5) as server:
        role = endpoint_role(server)
        role_json = str(role).replace("'", '"')

        def command(output_dir):
            return [
                sys.executable, "-m", "instrl_trl.cli", "generate", "--policy", "uniform", "--output_dir",
                str(output_dir), "--rewriter", role_json, "--expert", role_json, "--max_operations", "3",
                "--batch_size", "4", "--shard_size", "4", "--keep_intermediate", "true", "--keep_unverified", "true",
                "--dedup_threshold", "1.0", "--max_seeds", "120",
            ]  # fmt: skip

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        reference = tmp_path / "reference"
        subprocess.run(command(reference), check=True, capture_output=True, timeout=300, env=env)

        killed = tmp_path / "killed"
        process = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 300
        while len(list_shards(killed)) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        assert process.poll() is None, "the run finished before it could be killed; give it more seeds"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        partial = len(read_rows(killed))
        assert 0 < partial < len(read_rows(reference))

        subprocess.run(command(killed), check=True, capture_output=True, timeout=300, env=env)
        assert read_rows(killed) == read_rows(reference)
