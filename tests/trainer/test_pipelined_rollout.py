"""Pipelined PPO rollouts at an endpoint: the lock-step rollout, bit for bit, with the server's slots kept busy."""

import json
import threading
import time
from collections import Counter
from copy import deepcopy
from functools import partial

import pytest
import torch

from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
from instrl_trl.backends.roles import build_role
from instrl_trl.policy import act
from instrl_trl.trainer.pipelined_rollout import collect_rollouts_pipelined
from instrl_trl.trainer.rollout import RolloutBatch, collect_rollouts, episode_generators
from tests.backends.openai_server import OpenAIServer, evolving
from tests.trainer.order_dependent_reward import OperationMemoryReward


NUM_EPISODES = 16
MAX_CONCURRENCY = 8


def endpoint_rewriter(server: OpenAIServer):
    # No response cache: every rollout asks the server again, with its own timing
    spec = {"backend": "endpoint", "model": "test-model", "base_url": server.base_url,
            "max_concurrency": MAX_CONCURRENCY, "max_retries": 0}  # fmt: skip
    return build_role("rewriter", spec)


@pytest.fixture(scope="module")
def trainer(tiny_backbone, quickstart_seeds, tmp_path_factory):
    import instrl_trl.backends.endpoint  # noqa: F401 (its client's imports take seconds on a loaded machine: here)

    args = InstructionGenerationConfig(
        output_dir=str(tmp_path_factory.mktemp("policy")),
        per_device_train_batch_size=NUM_EPISODES,
        max_operations=3,
        max_state_length=64,
        report_to="none",
        disable_tqdm=True,
        seed=7,
    )
    return InstructionGenerationTrainer(
        model=tiny_backbone,
        args=args,
        train_dataset=quickstart_seeds,
        reward_funcs=["information_gain", "elimination", "query_cost", OperationMemoryReward()],
    )


def rollout(trainer, server: OpenAIServer, seeds: list[str], pipelined: bool) -> tuple[RolloutBatch, dict]:
    """One rollout with the rewriter on `server`; the reward memories and query counts are left as they were."""
    trainer.env.rewriter = endpoint_rewriter(server)
    trainer.args.pipelined_rollouts = pipelined
    before = trainer.accounting.details()
    with trainer.run_state.reward_memories_kept():
        batch = trainer.collect_rollout(seeds)
    after = trainer.accounting.details()
    spent = {role: {key: after[role][key] - before[role][key] for key in ("queries", "failures")} for role in after}
    return batch, spent


def assert_same_rollout(first: RolloutBatch, second: RolloutBatch) -> None:
    for name in ("num_episodes", "states", "episode_ids", "step_ids", "operations", "accepted", "queries"):
        assert getattr(first, name) == getattr(second, name), name
    for name in ("actions", "logprobs", "values", "rewards"):
        assert torch.equal(torch.cat(getattr(first, name)), torch.cat(getattr(second, name))), name
    assert first.reward_components.keys() == second.reward_components.keys()
    for name, values in first.reward_components.items():
        torch.testing.assert_close(torch.cat(values), torch.cat(second.reward_components[name]), rtol=0, atol=0,
                                   equal_nan=True, msg=name)  # fmt: skip
    assert first.evolutions == second.evolutions


def test_pipelined_rollout_is_the_lock_step_rollout_whatever_the_timing(trainer, quickstart_seeds):
    # Log-normal latencies (sigma 1) with other draws on each server: the rewrites return in other orders, so the
    # policy acts on other micro-batches and the reward functions would see other orders if they ran as answers came
    seeds = quickstart_seeds["instruction"][:NUM_EPISODES]
    batches, spent, servers = [], [], []
    for pipelined, latency_seed in ((False, 1), (True, 2), (True, 3)):
        with OpenAIServer(responder=evolving, latency=0.02, latency_sigma=1.0, latency_seed=latency_seed) as server:
            batch, queries = rollout(trainer, server, seeds, pipelined)
        batches.append(batch)
        spent.append(queries)
        servers.append(server)
    for batch in batches[1:]:
        assert_same_rollout(batches[0], batch)
    assert spent[0] == spent[1] == spent[2]
    assert spent[0]["rewriter"]["queries"] == len(servers[0].requests) > NUM_EPISODES
    assert spent[0]["rewriter"]["queries"] + spent[0]["reviewer"]["queries"] == sum(batches[0].queries)
    # Episodes of several lengths, and the order-dependent reward really varies
    assert len(set(Counter(batches[0].episode_ids).values())) > 1
    assert len(set(torch.cat(batches[0].reward_components["operation_memory"]).tolist())) > 2
    # The pipelined runs sent their requests in orders of their own (other timings), yet gave the same rollout
    orders = [[json.dumps(r.body["messages"]) for r in server.requests] for server in servers[1:]]
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])


def _answered_while_slow(trainer, seeds: list[str], pipelined: bool) -> tuple[int, int]:
    """
    Runs a rollout in which the first request the server takes holds its slot for 2.5 s; returns how many requests
    had reached the server when that one was answered, and the most the server had in flight at once.
    """
    arrived_when_answered = {}

    def responder(messages):
        arrived_when_answered.setdefault(json.dumps(messages), len(server.requests))
        return evolving(messages)

    with OpenAIServer(responder=responder, faults=["slow:2.5"], latency=0.05) as server:
        rollout(trainer, server, seeds, pipelined)
    slow = next(request for request in server.requests if request.fault == "slow:2.5")
    return arrived_when_answered[json.dumps(slow.body["messages"])], server.max_in_flight


def test_pipelined_rollout_keeps_queries_in_flight_past_a_slow_one(trainer, quickstart_seeds):
    seeds = quickstart_seeds["instruction"][:NUM_EPISODES]
    # Lock-step: the step waits for the slow rewrite, so no request of the next step reaches the server before it
    arrived, _ = _answered_while_slow(trainer, seeds, pipelined=False)
    assert arrived <= NUM_EPISODES
    # Pipelined: the other episodes go on with their next steps in the meantime, filling the server's slots
    arrived, max_in_flight = _answered_while_slow(trainer, seeds, pipelined=True)
    assert arrived > NUM_EPISODES
    # Several at once (all 8 slots on a quiet machine; a loaded one may not refill a slot before the next answer)
    assert max_in_flight >= MAX_CONCURRENCY // 2


def test_pipelined_rollout_reports_how_full_it_kept_the_server(trainer, quickstart_seeds):
    # The client's own measure (requests in flight over `max_concurrency`) is the server's, up to the HTTP round trips;
    # a lock-step rollout does not meter its calls. First, a process's first calls, which set up its HTTP client
    seeds = quickstart_seeds["instruction"][:NUM_EPISODES]
    with OpenAIServer(responder=evolving) as server:
        rollout(trainer, server, seeds[:2], pipelined=True)
    for pipelined in (True, False):
        with OpenAIServer(responder=evolving, latency=0.1, latency_sigma=0.5, latency_seed=4) as server:
            batch, _ = rollout(trainer, server, seeds, pipelined)
        if pipelined:
            assert batch.server_fill == pytest.approx(server.fill(MAX_CONCURRENCY), abs=0.1)
        else:
            assert batch.server_fill is None


def test_rules_roles_play_lock_step_and_match_the_pipelined_collector(trainer, quickstart_seeds):
    # With the rules engine too, the lock-step and the pipelined collectors return the same rollout given the same
    # seeds and streams (the pipelined one batches the rules engine's queries in this thread)
    seeds = quickstart_seeds["instruction"][:NUM_EPISODES]
    trainer.env.rewriter = build_role("rewriter", "rules")
    generators = episode_generators(trainer.args.seed, trainer.run_state.step, len(seeds))
    act_fn = trainer.policy_act_fn()  # bound to the same model; the per-episode streams override its generator
    with trainer.run_state.reward_memories_kept():
        lock_step = collect_rollouts(trainer.env, act_fn, seeds, trainer.score_step, generators)
    generators = episode_generators(trainer.args.seed, trainer.run_state.step, len(seeds))
    with trainer.run_state.reward_memories_kept():
        pipelined = collect_rollouts_pipelined(trainer.env, act_fn, seeds, trainer.score_step, generators, 3)
    assert_same_rollout(lock_step, pipelined)


def test_complete_steps_are_scored_in_a_background_thread_while_the_queries_go_on(trainer, quickstart_seeds):
    # A reward function that takes 0.3 s per step (a sentence-embedding forward pass on a loaded CPU): scored in the
    # main thread, it would hold back every episode's next query; in the scoring thread the queries go on meanwhile
    seeds = quickstart_seeds["instruction"][:NUM_EPISODES]
    scoring: list[tuple[str, float, float]] = []
    arrivals: list[float] = []

    def slow_score(result):
        start = time.monotonic()
        time.sleep(0.3)
        scoring.append((threading.current_thread().name, start, time.monotonic()))
        return trainer.score_step(result)

    def responder(messages):
        arrivals.append(time.monotonic())
        return evolving(messages)

    model = trainer.accelerator.unwrap_model(trainer.model)
    scoring_act_fn = partial(act, model, deepcopy(trainer.processing_class), max_length=trainer.args.max_state_length,
                             temperature=trainer.args.rollout_temperature)  # fmt: skip
    batches = []
    for scoring_fn in (scoring_act_fn, None):
        with OpenAIServer(responder=responder, latency=0.05) as server:
            trainer.env.rewriter = endpoint_rewriter(server)
            generators = episode_generators(trainer.args.seed, trainer.run_state.step, len(seeds))
            with trainer.run_state.reward_memories_kept():
                batches.append(collect_rollouts_pipelined(trainer.env, trainer.policy_act_fn(), seeds, slow_score,
                                                          generators, scoring_act_fn=scoring_fn))  # fmt: skip
        if scoring_fn is not None:
            background, background_arrivals = list(scoring), list(arrivals)
            scoring.clear()
    assert {name for name, _, _ in background} == {"rollout-scoring_0"}
    assert any(start < arrival < end for arrival in background_arrivals for _, start, end in background)
    assert {name for name, _, _ in scoring} == {"MainThread"}
    assert len(background) == max(batches[0].step_ids) + 1 > 1
    # The same rollout either way, step by step in order
    assert_same_rollout(batches[0], batches[1])


def test_one_generator_per_episode_is_required(trainer, quickstart_seeds):
    seeds = quickstart_seeds["instruction"][:4]
    with pytest.raises(ValueError, match="one per episode"):
        collect_rollouts_pipelined(trainer.env, trainer.policy_act_fn(), seeds, trainer.score_step, [])
