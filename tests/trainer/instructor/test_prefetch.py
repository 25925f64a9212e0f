"""Prefetched tool calls: a GRPO step keeps the endpoint's slots busy and trains exactly as one call at a time does."""

import hashlib
import json

import pytest
import torch

from instrl_trl.backends.roles import build_role
from instrl_trl.operations import build_operation_library
from instrl_trl.rewards import get_reward_funcs
from instrl_trl.stages.train_instructor import load_instructor_seeds
from instrl_trl.tool_environment import InstructionEnvironmentFactory, ToolCallPrefetcher
from instrl_trl.trainer.instructor import InstructorTrainer
from tests.backends.openai_server import OpenAIServer, evolving
from tests.trainer.order_dependent_reward import OperationMemoryReward

from .test_instructor_trainer import make_config


MAX_CONCURRENCY = 8


def rewrites_and_verdicts(messages: list[dict]) -> str:
    """Rewriter prompts get `evolving`'s answer; reviewer prompts a verdict drawn from a hash of the pair."""
    prompt = messages[-1]["content"]
    if "#Second Prompt#" not in prompt:
        return evolving(messages)
    return "Not Equal" if hashlib.sha256(prompt.encode()).digest()[0] % 3 else "Equal"


def endpoint_factory(server: OpenAIServer, cache: str | None, reward_funcs: list, reward_weights: list, **kwargs):
    role = {"backend": "endpoint", "model": "served", "base_url": server.base_url,
            "max_concurrency": MAX_CONCURRENCY, "max_retries": 0}  # fmt: skip
    return InstructionEnvironmentFactory(
        build_operation_library(),
        build_role("rewriter", role, cache),
        build_role("reviewer", {**role, "verdict_mode": "parse", "compare_with_rules": False}, cache),
        reward_funcs,
        reward_weights=reward_weights,
        **kwargs,
    )


def train_one_step(model, tmp_path, server: OpenAIServer, pipelined: bool, cached: bool, group_size: int) -> dict:
    """One GRPO step (16 completions, groups of `group_size`), both roles on `server`: what it trained and counted."""
    config = make_config(
        tmp_path,
        max_steps=1,
        per_device_train_batch_size=16,
        num_generations=group_size,
        pipelined_tool_calls=pipelined,
    )
    factory = endpoint_factory(
        server,
        str(tmp_path / "responses.sqlite") if cached else None,
        [*get_reward_funcs(config.reward_funcs), OperationMemoryReward()],
        reward_weights=[*config.operation_reward_weights, 0.5],
        max_operations=config.max_operations,
        stop_reward=config.stop_reward,
    )
    trainer = InstructorTrainer(
        model=model, args=config, train_dataset=load_instructor_seeds(config), environment_factory=factory
    )
    trainer.train()
    usage = {
        role: {k: v for k, v in counts.items() if k != "seconds"}
        for role, counts in trainer.accounting.details().items()
    }
    log = next(log for log in trainer.state.log_history if "loss" in log)
    return {
        "weights": {name: param.detach().clone() for name, param in trainer.model.named_parameters()},
        "log": {key: value for key, value in log.items() if key.startswith(("reward", "tools/", "loss", "queries/"))},
        "usage": usage,
        "statistics": trainer.statistics.state_dict(),
        "memory": dict(factory.reward_funcs[-1].seen),
        "requests": sorted(json.dumps(request.body["messages"]) for request in server.requests),
        "max_in_flight": server.max_in_flight,
    }


# Small groups: more distinct requests for the same CPU time. Groups of 4 with a cache: a group's first calls are
# often equal requests, which the cache answers once without prefetch (prefetched twice, they would be paid twice)
@pytest.mark.parametrize(("cached", "group_size"), [(True, 4), (False, 2)], ids=["cache", "no-cache"])
def test_prefetch_trains_as_one_call_at_a_time_whatever_the_timing(
    tiny_instructor, tmp_path, silence_trl, cached, group_size
):
    runs = []
    for name, pipelined, latency_seed in (("sequential", False, 1), ("prefetch-a", True, 2), ("prefetch-b", True, 3)):
        latency = {"latency": 0.02, "latency_sigma": 1.0, "latency_seed": latency_seed}
        with OpenAIServer(responder=rewrites_and_verdicts, **latency) as server:
            runs.append(train_one_step(tiny_instructor, tmp_path / name, server, pipelined, cached, group_size))
    sequential, *prefetched = runs
    # One query at a time without prefetch; several at once with it
    assert sequential["max_in_flight"] == 1
    assert all(run["max_in_flight"] > 1 for run in prefetched)
    # The episodes called tools, several times, and the reviewer judged some rewrites each way
    assert sequential["usage"]["rewriter"]["queries"] > MAX_CONCURRENCY
    assert (sequential["usage"]["rewriter"]["cache_hits"] > 0) == cached
    assert 0 < sequential["statistics"]["num_accepted"] < sequential["usage"]["reviewer"]["queries"]
    assert len(set(sequential["memory"].values())) > 1
    for run in prefetched:
        assert run["usage"] == sequential["usage"]  # queries, cache hits, failures, tokens
        assert run["requests"] == sequential["requests"]  # the same queries reached the server
        assert run["statistics"] == sequential["statistics"]
        assert run["memory"] == sequential["memory"]
        assert run["log"] == sequential["log"]
        for name, weight in sequential["weights"].items():
            assert torch.equal(run["weights"][name], weight), name


def asks(name: str, arguments: dict | None = None) -> dict:
    """An assistant message with one tool call, as TRL parses it."""
    call = {"type": "function", "function": {"name": name, "arguments": {} if arguments is None else arguments}}
    return {"role": "assistant", "content": "", "tool_calls": [call]}


def environments_and_tools(factory, num: int) -> tuple[list, list[dict]]:
    """`num` environments at the same seed, and their tool dicts as TRL builds them."""
    environments = [factory() for _ in range(num)]
    for environment in environments:
        environment.reset(instruction="Name three rivers of Europe.")
    return environments, [{name: getattr(env, name) for name in factory.tool_names} for env in environments]


def test_only_the_calls_trl_makes_are_fetched():
    with OpenAIServer(responder=rewrites_and_verdicts, latency=0.05) as server:
        factory = endpoint_factory(server, None, get_reward_funcs(["information_gain"]), None, max_operations=2)
        environments, tools = environments_and_tools(factory, 6)
        environments[5]._episode.done = True
        completions = [
            [asks("deepening")],  # fetched
            [asks("stop")],  # no query
            [asks("deepening", {"times": 2})],  # TRL's call fails on the argument, before any query
            [{"role": "assistant", "content": "Done."}],  # no tool call
            [asks("concretizing")],  # fetched
            [asks("deepening")],  # its episode has ended: the tool raises before any query
        ]
        with ToolCallPrefetcher(factory).prefetching(environments, completions, tools):
            # TRL's first iteration: the calls of completions 0, 1, 2, 4 and 5, in order
            assert tools[0]["deepening"]().startswith(("New instruction", "Rejected"))
            tools[1]["stop"]()
            with pytest.raises(TypeError):
                tools[2]["deepening"](times=2)
            tools[4]["concretizing"]()
            with pytest.raises(ValueError, match="has ended"):
                tools[5]["deepening"]()
            # The next iteration: completion 0's tool results were rolled back for length (its message, already
            # called, is last again and TRL no longer calls it); completion 4 asks again
            completions[4] += [{"role": "tool", "name": "concretizing", "content": "..."}, asks("deepening")]
            tools[4]["deepening"]()
        assert factory.accounting["rewriter"] == 3
        # Every query that reached the server was used by a step, and counted
        assert len(server.requests) == factory.accounting.total
        assert server.max_in_flight == 2


def test_an_error_of_a_prefetch_is_raised_by_the_call_that_uses_it():
    # The first request that reaches the server is completion 1's (completion 0 calls `stop`): a fatal 401
    with OpenAIServer(responder=rewrites_and_verdicts, faults=["401"]) as server:
        factory = endpoint_factory(server, None, get_reward_funcs(["information_gain"]), None)
        environments, tools = environments_and_tools(factory, 2)
        completions = [[asks("stop")], [asks("deepening")]]
        with ToolCallPrefetcher(factory).prefetching(environments, completions, tools):
            assert tools[0]["stop"]().startswith("Final instruction")
            with pytest.raises(PermissionError):
                tools[1]["deepening"]()
        assert len(server.requests) == 1
        assert factory.accounting.total == 0  # as without prefetch: the failed call counted nothing


def test_a_local_rewriter_is_not_prefetched():
    factory = InstructionEnvironmentFactory(
        build_operation_library(),
        build_role("rewriter", None),
        build_role("reviewer", None),
        get_reward_funcs(["information_gain"]),
    )
    with pytest.raises(ValueError, match="endpoint"):
        ToolCallPrefetcher(factory)
