import inspect

import pytest
import torch
from transformers.utils import get_json_schema

from instrl_trl.backends.accounting import QueryAccounting
from instrl_trl.backends.base import Review, Reviewer, Rewrite, Rewriter
from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
from instrl_trl.environment import InstructionEnv
from instrl_trl.operations import Operation, build_operation_library
from instrl_trl.rewards import elimination_penalty, information_gain_reward, query_cost
from instrl_trl.rewards.scoring import weighted_rewards
from instrl_trl.tool_environment import InstructionEnvironmentFactory


SEED = "Write a short poem about the sea."
REWARD_FUNCS = [information_gain_reward, elimination_penalty, query_cost]
WEIGHTS = [1.0, 1.0, 0.3]


class RefusingRewriter(Rewriter):
    def rewrite(self, requests):
        return [Rewrite("I'm sorry, I cannot help with that.") for _ in requests]


class NoGainReviewer(Reviewer):
    def review(self, originals, rewrites):
        return [Review(False, "Equal") for _ in originals]


def make_factory(rewriter=None, reviewer=None, operations=None, **kwargs) -> InstructionEnvironmentFactory:
    return InstructionEnvironmentFactory(
        operations or build_operation_library(),
        rewriter or RulesRewriter(),
        reviewer or RulesReviewer(),
        REWARD_FUNCS,
        reward_weights=WEIGHTS,
        **kwargs,
    )


def tool_names(environment) -> list[str]:
    # What TRL exposes: public functions of the class, except the protocol
    return [
        name
        for name, _ in inspect.getmembers(type(environment), predicate=inspect.isfunction)
        if not name.startswith("_") and name not in ("reset", "get_reward")
    ]


def test_one_tool_per_operation_plus_stop_with_schemas():
    factory = make_factory()
    environment = factory()
    assert tool_names(environment) == sorted([*build_operation_library().names, "stop"]) == factory.tool_names
    schema = get_json_schema(environment.deepening)["function"]
    assert schema["name"] == "deepening"
    assert schema["description"] == build_operation_library()["deepening"].description
    assert schema["parameters"]["properties"] == {}


def test_user_operation_becomes_a_tool():
    user = Operation(
        name="add_audience",
        description="Name the audience the answer is for.",
        prompt_template="Rewrite for an audience: {instruction}",
        backend_options={"rules": {"strategy": "append_clause", "texts": ["Write it for a ten-year-old."]}},
    )
    environment = make_factory(operations=build_operation_library().merged([user]))()
    assert "add_audience" in tool_names(environment)
    environment.reset(instruction=SEED)
    assert environment.add_audience() == f"New instruction: {SEED} Write it for a ten-year-old."
    assert environment.operations == ("add_audience",)


@pytest.mark.parametrize("name", ["reset", "get_reward", "_hidden", "instruction"])
def test_operation_names_that_cannot_be_tools_fail(name):
    operation = Operation(
        name=name,
        description="x",
        prompt_template="{instruction}",
        backend_options={"rules": {"strategy": "append_clause", "texts": ["More."]}},
    )
    with pytest.raises(ValueError, match="cannot be a tool"):
        make_factory(operations=build_operation_library().merged([operation]))


def test_reset_returns_the_prompt_suffix_and_needs_the_instruction_column():
    environment = make_factory(instruction_column="seed")()
    assert environment.reset(seed=SEED, prompt=[{"role": "user", "content": "x"}]) == f"\nInstruction: {SEED}"
    with pytest.raises(ValueError, match="instruction_column"):
        environment.reset(instruction=SEED)


def test_tool_applies_the_operation_like_the_ppo_environment():
    environment = make_factory(seed=3)()
    environment.reset(instruction=SEED)
    reply = environment.add_constraints()

    reference = InstructionEnv(build_operation_library(), RulesRewriter(), RulesReviewer(), seed=3)
    reference.reset([SEED])
    step = reference.step(["add_constraints"])
    assert step.accepted == [True]
    assert reply == f"New instruction: {step.new_instructions[0]}"
    assert environment.instruction == step.new_instructions[0]


def test_rejections_say_why():
    environment = make_factory(reviewer=NoGainReviewer())()
    environment.reset(instruction=SEED)
    assert environment.deepening() == "Rejected: no new information. Instruction unchanged."
    assert environment.instruction == SEED

    environment = make_factory(rewriter=RefusingRewriter())()
    environment.reset(instruction=SEED)
    assert environment.deepening() == "Rejected: refusal. The episode has ended."
    with pytest.raises(ValueError, match="episode has ended"):
        environment.breadth()


def test_max_operations_ends_the_episode():
    environment = make_factory(reviewer=NoGainReviewer(), max_operations=2)()
    environment.reset(instruction=SEED)
    environment.deepening()
    assert environment.deepening().endswith("No operations left: call stop.")
    with pytest.raises(ValueError, match="max_operations"):
        environment.deepening()
    assert environment.stop() == f"Final instruction: {SEED}"


def _reference_reward(seed: int, actions: list[str]) -> float:
    env = InstructionEnv(build_operation_library(), RulesRewriter(), RulesReviewer(), seed=seed)
    env.reset([SEED])
    total = 0.0
    for action in actions:
        step = env.step([action])
        rewards, _ = weighted_rewards(
            REWARD_FUNCS, torch.tensor(WEIGHTS), step.instructions, step.new_instructions, **step.reward_kwargs()
        )
        total += rewards.item()
    return total


def test_reward_is_the_ppo_step_rewards_plus_the_stop_rule():
    factory = make_factory(seed=1, stop_reward=0.5)
    stopped, plain = factory(), factory()
    for environment in (stopped, plain):
        environment.reset(instruction=SEED)
        environment.add_constraints()
        environment.concretizing()
    stopped.stop()
    expected = _reference_reward(1, ["add_constraints", "concretizing"])
    assert expected != 0.0
    assert plain.get_reward() == pytest.approx(expected)  # ended in plain text: no stop reward
    assert stopped.get_reward() == pytest.approx(expected + 0.5)


def test_no_stop_reward_after_an_elimination():
    environment = make_factory(rewriter=RefusingRewriter(), stop_reward=0.5)()
    environment.reset(instruction=SEED)
    environment.deepening()
    environment.stop()
    # The refused rewrite: one rewriter query (-0.3), eliminated (-1), no review
    assert environment.get_reward() == pytest.approx(-1.3)


def test_queries_are_counted_per_role_across_environments():
    accounting = QueryAccounting()
    factory = make_factory(accounting=accounting)
    first, second = factory(), factory()
    first.reset(instruction=SEED)
    second.reset(instruction="Name three rivers in Europe.")
    first.add_constraints()
    first.concretizing()
    second.deepening()
    second.stop()
    assert accounting.as_dict() == {"rewriter": 3, "reviewer": 3, "expert": 0}

    refusing = make_factory(rewriter=RefusingRewriter(), accounting=accounting)()
    refusing.reset(instruction=SEED)
    refusing.deepening()  # eliminated by rule: no reviewer query
    assert accounting.as_dict() == {"rewriter": 4, "reviewer": 3, "expert": 0}


def test_group_members_start_from_the_same_state():
    factory = make_factory(seed=7)
    row = {"prompt": [{"role": "user", "content": "Improve it."}], "instruction": SEED}
    group = [factory() for _ in range(4)]
    # A used environment is reset for the next group: nothing of its last episode may leak
    group[0].reset(instruction="Explain gravity.")
    group[0].breadth()
    prompts = [environment.reset(**row) for environment in group]
    assert len(set(prompts)) == 1
    assert {(environment.instruction, environment.operations) for environment in group} == {(SEED, ())}
    replies = [(environment.add_constraints(), environment.deepening()) for environment in group]
    assert len(set(replies)) == 1
    assert len({environment.get_reward() for environment in group}) == 1


def test_statistics_record_each_episode_once():
    factory = make_factory()
    environment = factory()
    environment.reset(instruction=SEED)
    environment.add_constraints()
    environment.stop()
    reward = environment.get_reward()
    environment.get_reward()
    statistics = factory.statistics
    assert statistics.num_episodes == 1
    assert statistics.num_stopped == 1
    assert statistics.operation_counts["add_constraints"] == 1
    assert statistics.reward_sum == pytest.approx(reward)
