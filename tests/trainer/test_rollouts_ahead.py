"""
Rollouts played ahead (`rollouts_ahead`): the next rollouts' episodes run while PPO trains on this one, each played by
the weights of `rollouts_ahead` updates before, and the run stays deterministic and resumable.
"""

import json
import logging
import threading
import time
from copy import deepcopy

import pytest
import torch

from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
from instrl_trl.backends.rules import read_features
from instrl_trl.operations import build_operation_library
from instrl_trl.policy import get_action_and_value
from instrl_trl.trainer.sampling import EpochSeededRepeatSampler
from instrl_trl.trainer.state import EXTRA_STATE_FILE
from tests.backends.openai_server import OpenAIServer, evolving
from tests.trainer.order_dependent_reward import OperationMemoryReward
from tests.trainer.rules_world import greedy_first_operations, rules_world


MAX_CONCURRENCY = 8


def make_config(tmp_path, base_url: str, **overrides) -> InstructionGenerationConfig:
    # 8 seeds per micro-step, 2 micro-steps per rollout (16 episodes), 2 PPO epochs: a rollout every 4 micro-steps
    kwargs = {
        "output_dir": str(tmp_path / "policy"),
        "per_device_train_batch_size": 8,
        "steps_per_generation": 2,
        "num_iterations": 2,
        "max_steps": 12,
        "learning_rate": 5e-3,
        "logging_steps": 4,
        "save_strategy": "no",
        "report_to": "none",
        "reward_funcs": ["information_gain", "elimination", "query_cost"],
        "reward_weights": None,  # one each, for the functions the trainer is given
        # The multiplier moves every rollout: a rollout's rewards must use it as it stands when the rollout is taken
        "cost_target": 1.0,
        "cost_multiplier_lr": 0.5,
        "max_operations": 3,
        "max_state_length": 64,
        "disable_tqdm": True,
        "seed": 7,
        "rollouts_ahead": 1,
        "rewriter": {
            "backend": "endpoint",
            "model": "m",
            "base_url": base_url,
            "max_retries": 0,
            "max_concurrency": MAX_CONCURRENCY,
        },
    }
    kwargs.update(overrides)
    return InstructionGenerationConfig(**kwargs)


class RolloutRecorder:
    """
    Keeps each rollout the trainer takes, with the policy's weights at that moment (before its update) and the
    rewriter's queries counted by then.
    """

    def __init__(self, trainer: InstructionGenerationTrainer):
        self.rollouts, self.weights, self.rewrites = [], [], []
        log_rollout = trainer._log_rollout

        def record(rollout):
            self.rollouts.append(rollout)
            self.weights.append(deepcopy(trainer.accelerator.unwrap_model(trainer.model).state_dict()))
            self.rewrites.append(trainer.accounting["rewriter"])
            log_rollout(rollout)

        trainer._log_rollout = record


def build(tiny_backbone, seeds, tmp_path, server: OpenAIServer, **overrides) -> InstructionGenerationTrainer:
    # An order-dependent reward besides: a rollout's rewards must come after the previous rollout's, whatever the
    # timing
    return InstructionGenerationTrainer(
        model=tiny_backbone,
        args=make_config(tmp_path, server.base_url, **overrides),
        train_dataset=seeds,
        reward_funcs=["information_gain", "elimination", "query_cost", OperationMemoryReward()],
    )


def train(tiny_backbone, seeds, tmp_path, server: OpenAIServer, **overrides):
    trainer = build(tiny_backbone, seeds, tmp_path, server, **overrides)
    recorder = RolloutRecorder(trainer)
    trainer.train()
    return trainer, recorder


def assert_same_weights(first, second) -> None:
    for (name, expected), (_, actual) in zip(
        first.model.named_parameters(), second.model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0, msg=f"{name} differs")


def logprobs_under(trainer, weights: dict, rollout) -> torch.Tensor:
    model = deepcopy(trainer.accelerator.unwrap_model(trainer.model))
    model.load_state_dict(weights)
    with torch.no_grad():
        _, logprobs, _, _ = get_action_and_value(
            model.eval(),
            trainer.processing_class,
            rollout.states,
            max_length=trainer.args.max_state_length,
            actions=torch.cat(rollout.actions),
            temperature=trainer.args.rollout_temperature,
        )
    return logprobs


@pytest.mark.parametrize("ahead", [1, 2])
def test_rollout_m_is_played_by_the_weights_ppo_had_when_it_took_rollout_m_minus_ahead(
    tiny_backbone, quickstart_seeds, tmp_path, ahead
):
    with OpenAIServer(responder=evolving, latency=0.01) as server:
        trainer, recorded = train(tiny_backbone, quickstart_seeds, tmp_path, server, rollouts_ahead=ahead)
    rollouts, weights = recorded.rollouts, recorded.weights
    assert len(rollouts) == 3
    # weights[m]: what PPO had when it took rollout m (before its update); the first `ahead` rollouts after the first
    # are played by the initial weights
    for index, rollout in enumerate(rollouts):
        player = weights[max(0, index - ahead)]
        torch.testing.assert_close(
            torch.cat(rollout.logprobs), logprobs_under(trainer, player, rollout), rtol=0, atol=1e-5
        )
    # ... not by the weights PPO starts from (the updates moved them): the test can tell the two apart
    for index in (1, 2):
        moved = (torch.cat(rollouts[index].logprobs) - logprobs_under(trainer, weights[index], rollouts[index])).abs()
        assert moved.max() > 1e-3
    # No rollout past the last was launched: every request the server received was counted, and trained on
    assert len(server.requests) == trainer.accounting["rewriter"] > 0
    assert trainer.accounting.total == sum(sum(rollout.queries) for rollout in rollouts)
    assert server.max_in_flight <= MAX_CONCURRENCY
    fills = [log["server/fill"] for log in trainer.state.log_history if "server/fill" in log]
    assert len(fills) == 3


def test_runs_against_servers_of_other_timings_train_the_same_policy(tiny_backbone, quickstart_seeds, tmp_path):
    runs = []
    for latency_seed in (1, 2):
        with OpenAIServer(responder=evolving, latency=0.02, latency_sigma=1.0, latency_seed=latency_seed) as server:
            trainer, _ = train(tiny_backbone, quickstart_seeds, tmp_path / str(latency_seed), server)
            orders = [json.dumps(request.body["messages"]) for request in server.requests]
        runs.append((trainer, orders))
    (first, first_order), (second, second_order) = runs
    assert first_order != second_order and sorted(first_order) == sorted(second_order)
    counts = [
        {role: {key: value for key, value in usage.items() if key != "seconds"} for role, usage in details.items()}
        for details in (first.accounting.details(), second.accounting.details())
    ]
    assert counts[0] == counts[1]
    assert_same_weights(first, second)


def test_the_sampler_names_each_seeds_places_in_the_next_rollouts_across_epochs():
    def sampler(lookahead):
        return EpochSeededRepeatSampler(list(range(10)), mini_repeat_count=1, batch_size=4, repeat_count=2, seed=3,
                                        lookahead=lookahead)  # fmt: skip

    ahead, plain = sampler(2), sampler(0)
    batches, entries = [], []  # each epoch's 2 batches of 4, in order
    for epoch in (0, 1, 2):
        ahead.set_epoch(epoch)
        plain.set_epoch(epoch)
        epoch_entries = list(ahead)
        assert [entry[0] for entry in epoch_entries] == list(plain)  # the same order as without the lookahead
        entries.append(epoch_entries)
        batches += [[entry[0] for entry in epoch_entries[start : start + 4]] for start in (0, 8)]
    for epoch in (0, 1):
        for position, start in enumerate((0, 8)):
            batch = 2 * epoch + position
            for repeat in (0, 4):  # both repeats of the batch name the same later batches
                chunk = entries[epoch][start + repeat : start + repeat + 4]
                assert [entry[1] for entry in chunk] == batches[batch + 1]
                assert [entry[2] for entry in chunk] == batches[batch + 2]  # across the epoch's end for the last
    # Without a seed the next epochs' order is unknown: past this epoch, nothing is named
    unseeded = EpochSeededRepeatSampler(list(range(10)), mini_repeat_count=1, batch_size=4, lookahead=1)
    assert {entry[1] for entry in list(unseeded)[4:]} == {None}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"query_budget": 100}, "`query_budget`"),
        ({"pipelined_rollouts": False}, "`pipelined_rollouts: true`"),
        ({"rollouts_ahead": -1}, "`rollouts_ahead` must be 0"),
    ],
)
def test_settings_rollouts_ahead_cannot_keep_fail_at_once(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        make_config(tmp_path, "http://127.0.0.1:9/v1", **overrides)


def test_rollouts_ahead_without_an_endpoint_fail_before_any_query(tiny_backbone, quickstart_seeds, tmp_path):
    config = make_config(tmp_path, "http://127.0.0.1:9/v1", rewriter="rules")
    with pytest.raises(ValueError, match="neither the rewriter nor the reviewer is an endpoint"):
        InstructionGenerationTrainer(model=tiny_backbone, args=config, train_dataset=quickstart_seeds)


@pytest.mark.parametrize(
    ("ahead", "max_steps", "checkpoints"),
    [
        # A rollout every 4 micro-steps. At step 3 the run is in the middle of rollout 0's PPO epochs, at step 4
        # about to take rollout 1: both times rollout 1 is in flight, played by the initial weights
        (1, 8, {3: [{"step": 4, "policy": 0}], 4: [{"step": 4, "policy": 0}]}),
        # Two ahead, in rollout 1's epochs: rollout 2 played by the initial weights, rollout 3 by those PPO had at 4
        (2, 16, {5: [{"step": 8, "policy": 0}, {"step": 12, "policy": 1}]}),
    ],
)
def test_a_resumed_run_is_the_uninterrupted_one(
    tiny_backbone, quickstart_seeds, tmp_path, ahead, max_steps, checkpoints
):
    config = {"save_strategy": "steps", "save_steps": 1, "max_steps": max_steps, "rollouts_ahead": ahead}
    with OpenAIServer(responder=evolving, latency=0.01) as server:
        full, _ = train(tiny_backbone, quickstart_seeds, tmp_path / "full", server, **config)
        for checkpoint_step, in_flight in checkpoints.items():
            checkpoint = tmp_path / "full" / "policy" / f"checkpoint-{checkpoint_step}"
            state = torch.load(checkpoint / EXTRA_STATE_FILE.format(rank=0), weights_only=False)
            saved = state["rollouts_in_flight"]
            assert saved["rollouts"] == in_flight and len(saved["policies"]) == len(in_flight)
            resumed = build(tiny_backbone, quickstart_seeds, tmp_path / f"resumed-{checkpoint_step}", server, **config)
            resumed.train(resume_from_checkpoint=str(checkpoint))
            assert resumed.accounting.as_dict() == full.accounting.as_dict()
            assert_same_weights(full, resumed)


@pytest.mark.parametrize("ahead", [1, 0])
def test_the_next_rollout_keeps_the_server_busy_while_this_one_waits(tiny_backbone, quickstart_seeds, tmp_path, ahead):
    # The first request holds its slot for 2 s: rollout 0 cannot end before it is answered. One rollout ahead,
    # rollout 1's episodes use the other slots meanwhile; on-policy, only rollout 0's own requests can reach the server
    arrived_when_answered = {}

    def responder(messages):
        arrived_when_answered.setdefault(json.dumps(messages), len(server.requests))
        return evolving(messages)

    with OpenAIServer(responder=responder, faults=["slow:2"], latency=0.02) as server:
        _, recorded = train(tiny_backbone, quickstart_seeds, tmp_path, server, max_steps=8, rollouts_ahead=ahead)
    slow = next(request for request in server.requests if request.fault == "slow:2")
    arrived = arrived_when_answered[json.dumps(slow.body["messages"])]
    rollout_0_requests = recorded.rewrites[0]
    assert server.max_in_flight <= MAX_CONCURRENCY
    if ahead:
        assert arrived > rollout_0_requests + 8
    else:
        assert arrived <= rollout_0_requests


def test_rollouts_ahead_that_keep_a_server_waiting_say_why_once(tiny_backbone, quickstart_seeds, tmp_path, caplog):
    # 4 episodes a rollout and one ahead: at most 8 of the server's 16 slots are ever busy, and the process, waiting
    # on a 0.1 s server with a tiny policy, has cores to spare. The run says so once, not at every rollout
    with OpenAIServer(responder=evolving, latency=0.1) as server:
        rewriter = {"backend": "endpoint", "model": "m", "base_url": server.base_url, "max_concurrency": 16}
        trainer = build(
            tiny_backbone, quickstart_seeds, tmp_path, server, rewriter=rewriter, per_device_train_batch_size=2,
            num_iterations=1, max_steps=40,
        )  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="instrl_trl.trainer.server_fill"):
            trainer.train()
        base_url = server.base_url
        assert len(server.requests) >= 4 * 16  # enough for the run to tell
    warnings = [record.getMessage() for record in caplog.records if "kept the server waiting" in record.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"Rollouts played ahead kept the server waiting on this process: {base_url}: " in warnings[0]
    assert "Its rollouts had no more queries to send: play more rollouts ahead" in warnings[0], warnings[0]
    fills = [log["server/fill"] for log in trainer.state.log_history if "server/fill" in log]
    assert fills and all(fill < 0.5 for fill in fills)


def test_a_failed_rollout_ahead_stops_training_and_leaves_no_thread_behind(tiny_backbone, quickstart_seeds, tmp_path):
    # Every answer after the first 20 is a 401 (not retried): a rollout in flight fails, the run stops with the
    # error, and the rollouts' threads end instead of keeping the process alive
    with OpenAIServer(responder=evolving, faults=["ok"] * 20 + ["401"] * 200, latency=0.01) as server:
        trainer = build(tiny_backbone, quickstart_seeds, tmp_path, server)
        with pytest.raises(PermissionError, match="status 401"):
            trainer.train()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        thread.name.startswith(("rollout-ahead", "role-call", "rollout-scoring")) for thread in threading.enumerate()
    ):
        time.sleep(0.1)
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("rollout-ahead")]


@pytest.mark.timeout(300)  # seconds alone on 2 cores
def test_a_policy_two_rollouts_ahead_still_chooses_by_what_it_reads(tiny_backbone, quickstart_seeds, tmp_path):
    # The rules engine's world through a server, as in test_learning: inquiries without a general term gain only from
    # deepening, tasks with one only from concretizing (through an endpoint, add_constraints always adds the
    # constraint it asks for, so it is left out). The policy trains on rollouts played by weights 2 updates old, and
    # must still pick by what it reads
    features = {seed: read_features(seed) for seed in quickstart_seeds["instruction"]}
    inquiries = [seed for seed, f in features.items() if f.inquiry and not f.general_term]
    tasks = [seed for seed, f in features.items() if not f.inquiry and f.general_term]
    assert len(inquiries) >= 30 and len(tasks) >= 30
    train_seeds = inquiries[::2] + tasks[::2]
    operations = build_operation_library(["deepening", "concretizing"], None)
    with OpenAIServer(responder=rules_world(operations)) as server:
        config = make_config(
            tmp_path,
            server.base_url,
            rollouts_ahead=2,
            max_steps=100,
            max_operations=1,
            operations=list(operations),
            per_device_train_batch_size=16,
            reward_weights=[1.0, 1.0, 0.1],
            cost_target=None,
            logging_steps=50,
            seed=0,
        )
        trainer = InstructionGenerationTrainer(
            model=tiny_backbone,
            args=config,
            train_dataset=quickstart_seeds.filter(lambda row: row["instruction"] in train_seeds),
        )
        trainer.train()
    held_out_inquiries = greedy_first_operations(trainer, inquiries[1::2])
    held_out_tasks = greedy_first_operations(trainer, tasks[1::2])
    assert held_out_inquiries.count("deepening") >= 0.8 * len(held_out_inquiries), held_out_inquiries
    assert held_out_tasks.count("concretizing") >= 0.8 * len(held_out_tasks), held_out_tasks
