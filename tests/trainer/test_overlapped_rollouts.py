"""
Overlapped rollouts (`overlap_rollouts`): the next rollout's episodes run while PPO trains on this one, played by the
weights of one update before, and the run stays deterministic and resumable.
"""

import json
import threading
import time
from copy import deepcopy

import pytest
import torch

from instrl_trl import InstructionGenerationConfig, InstructionGenerationTrainer
from instrl_trl.policy import get_action_and_value
from instrl_trl.trainer.sampling import EpochSeededRepeatSampler
from instrl_trl.trainer.state import EXTRA_STATE_FILE
from tests.backends.openai_server import OpenAIServer, evolving
from tests.trainer.order_dependent_reward import OperationMemoryReward


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
        "overlap_rollouts": True,
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


def test_each_rollout_after_the_first_is_played_by_the_weights_of_one_update_before(
    tiny_backbone, quickstart_seeds, tmp_path
):
    with OpenAIServer(responder=evolving, latency=0.01) as server:
        trainer, recorded = train(tiny_backbone, quickstart_seeds, tmp_path, server)
    rollouts, weights = recorded.rollouts, recorded.weights
    assert len(rollouts) == 3
    # Rollout 0 by the initial weights; rollout j >= 1 by the weights PPO had when it took rollout j - 1
    players = [weights[0], weights[0], weights[1]]
    for index, rollout in enumerate(rollouts):
        torch.testing.assert_close(
            torch.cat(rollout.logprobs), logprobs_under(trainer, players[index], rollout), rtol=0, atol=1e-5
        )
    # ... not by the weights PPO starts from (the update moved them): the test can tell the two apart
    for index in (1, 2):
        moved = (torch.cat(rollouts[index].logprobs) - logprobs_under(trainer, weights[index], rollouts[index])).abs()
        assert moved.max() > 1e-3
    # No rollout past the last was launched: every request the server received was counted, and trained on
    assert len(server.requests) == trainer.accounting["rewriter"] > 0
    assert trainer.accounting.total == sum(sum(rollout.queries) for rollout in rollouts)
    assert server.max_in_flight <= MAX_CONCURRENCY
    fills = [log["server/fill"] for log in trainer.state.log_history if "server/fill" in log]
    assert len(fills) == 3


def test_overlapped_runs_against_servers_of_other_timings_train_the_same_policy(
    tiny_backbone, quickstart_seeds, tmp_path
):
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


def test_the_sampler_pairs_each_seed_with_its_place_in_the_next_rollout():
    sampler = EpochSeededRepeatSampler(list(range(10)), mini_repeat_count=1, batch_size=4, repeat_count=2, seed=3,
                                       with_next=True)  # fmt: skip
    plain = EpochSeededRepeatSampler(list(range(10)), mini_repeat_count=1, batch_size=4, repeat_count=2, seed=3)
    epochs = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        plain.set_epoch(epoch)
        pairs = list(sampler)
        assert [index for index, _ in pairs] == list(plain)  # the same order as without pairs
        epochs.append(pairs)
    for pairs in epochs:
        batches = [pairs[start : start + 4] for start in range(0, len(pairs), 8)]  # each batch, first of 2 repeats
        assert [next_index for _, next_index in batches[0]] == [index for index, _ in batches[1]]
    # The last batch of epoch 0 names the first batch of epoch 1
    assert [next_index for _, next_index in epochs[0][-4:]] == [index for index, _ in epochs[1][:4]]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"query_budget": 100}, "`query_budget`"),
        ({"pipelined_rollouts": False}, "`pipelined_rollouts: true`"),
    ],
)
def test_settings_overlap_cannot_keep_fail_at_once(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        make_config(tmp_path, "http://127.0.0.1:9/v1", **overrides)


def test_overlap_without_an_endpoint_fails_before_any_query(tiny_backbone, quickstart_seeds, tmp_path):
    config = make_config(tmp_path, "http://127.0.0.1:9/v1", rewriter="rules")
    with pytest.raises(ValueError, match="neither the rewriter nor the reviewer is an endpoint"):
        InstructionGenerationTrainer(model=tiny_backbone, args=config, train_dataset=quickstart_seeds)


@pytest.mark.parametrize("checkpoint_step", [3, 4])
def test_a_resumed_overlapped_run_is_the_uninterrupted_one(tiny_backbone, quickstart_seeds, tmp_path, checkpoint_step):
    # A rollout every 4 micro-steps: at step 3 the run is in the middle of rollout 0's PPO epochs, at step 4 about to
    # take rollout 1; both times rollout 1 is in flight, played by the initial weights, which the checkpoint keeps
    config = {"save_strategy": "steps", "save_steps": 1}
    with OpenAIServer(responder=evolving, latency=0.01) as server:
        full, _ = train(tiny_backbone, quickstart_seeds, tmp_path / "full", server, **config)
        checkpoint = tmp_path / "full" / "policy" / f"checkpoint-{checkpoint_step}"
        assert (
            torch.load(checkpoint / EXTRA_STATE_FILE.format(rank=0), weights_only=False)["rollout_in_flight"]["step"]
            == 4
        )
        resumed = build(tiny_backbone, quickstart_seeds, tmp_path / "resumed", server, **config)
        resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.accounting.as_dict() == full.accounting.as_dict()
    assert_same_weights(full, resumed)


@pytest.mark.parametrize("overlap", [True, False])
def test_the_next_rollout_keeps_the_server_busy_while_this_one_waits(
    tiny_backbone, quickstart_seeds, tmp_path, overlap
):
    # The first request holds its slot for 2 s: rollout 0 cannot end before it is answered. Overlapped, rollout 1's
    # episodes use the other slots meanwhile; on-policy, only rollout 0's own requests can reach the server
    arrived_when_answered = {}

    def responder(messages):
        arrived_when_answered.setdefault(json.dumps(messages), len(server.requests))
        return evolving(messages)

    with OpenAIServer(responder=responder, faults=["slow:2"], latency=0.02) as server:
        _, recorded = train(tiny_backbone, quickstart_seeds, tmp_path, server, max_steps=8, overlap_rollouts=overlap)
    slow = next(request for request in server.requests if request.fault == "slow:2")
    arrived = arrived_when_answered[json.dumps(slow.body["messages"])]
    rollout_0_requests = recorded.rewrites[0]
    assert server.max_in_flight <= MAX_CONCURRENCY
    if overlap:
        assert arrived > rollout_0_requests + 8
    else:
        assert arrived <= rollout_0_requests


def test_a_failed_overlapped_rollout_stops_training_and_leaves_no_thread_behind(
    tiny_backbone, quickstart_seeds, tmp_path
):
    # Every answer after the first 20 is a 401 (not retried): a rollout in flight fails, the run stops with the
    # error, and the rollouts' threads end instead of keeping the process alive
    with OpenAIServer(responder=evolving, faults=["ok"] * 20 + ["401"] * 200, latency=0.01) as server:
        trainer = build(tiny_backbone, quickstart_seeds, tmp_path, server)
        with pytest.raises(PermissionError, match="status 401"):
            trainer.train()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        thread.name.startswith(("overlapped-rollout", "role-call", "rollout-scoring"))
        for thread in threading.enumerate()
    ):
        time.sleep(0.1)
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("overlapped-rollout")]
