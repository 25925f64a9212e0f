import pytest
import torch

from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
from instrl_trl.environment import STOP_ACTION, InstructionEnv
from instrl_trl.operations import DEFAULT_OPERATIONS
from instrl_trl.policies.baselines import build_baseline_policy
from instrl_trl.policies.query_efficiency import measure_query_efficiency


SEEDS = ["Write a poem about the ocean.", "Why is the sky blue?", "Plan a trip to a city."]


def no_reward(result):
    return torch.zeros(len(result.operation)), {}


def make_env():
    return InstructionEnv(DEFAULT_OPERATIONS, RulesRewriter(), RulesReviewer())


@pytest.mark.timeout(60)  # before the fix this looped for ever
def test_a_policy_that_always_stops_ends_the_measure():
    stop = make_env().action_names.index(STOP_ACTION)

    def always_stop(states):
        return torch.full((len(states),), stop), torch.zeros(len(states)), torch.zeros(len(states))

    result = measure_query_efficiency(
        make_env(), always_stop, SEEDS, reward_fn=no_reward, query_budget=100, batch_size=2
    )
    assert result.num_queries == 0 and result.num_accepted == 0
    assert result.num_episodes == 4  # two batches of two: one whole pass over the three seeds


def test_the_budget_is_spent_by_a_policy_that_queries():
    uniform = build_baseline_policy("uniform", make_env().action_names, seed=0)
    result = measure_query_efficiency(make_env(), uniform, SEEDS, reward_fn=no_reward, query_budget=40, batch_size=2)
    assert 40 <= result.num_queries <= 40 + 2 * 2 * 6  # at most one batch's queries (6 steps of 2 queries) over
