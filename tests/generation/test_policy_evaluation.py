"""
The one policy evaluation on a world whose every outcome is known by hand (tests/trainer/scripted_world.py), in both
modes, with tokens.
"""

import math

import pytest
import torch

from instrl_trl.backends.base import Review, Rewrite, Usage
from instrl_trl.environment import STOP_ACTION
from instrl_trl.generation.policies import ActPolicy, baseline_policy
from instrl_trl.generation.policy_evaluation import evaluate_policy, evaluation_setup
from tests.trainer.scripted_world import (
    GROW,
    IDLE,
    POEM,
    SEEDS,
    VASE,
    ScriptedReviewer,
    ScriptedRewriter,
    scripted_operations,
)


class CountingRewriter(ScriptedRewriter):
    """The scripted rewriter, reporting 2 prompt and 1 completion tokens per rewrite."""

    def rewrite(self, requests):
        usage = Usage(prompt_tokens=2, completion_tokens=1)
        return [Rewrite(r.instruction, r.constraints, usage, rejection=r.rejection) for r in super().rewrite(requests)]


class CountingReviewer(ScriptedReviewer):
    """The scripted reviewer, reporting 3 prompt and 1 completion tokens per review."""

    def review(self, originals, rewrites):
        return [Review(r.information_gain, r.verdict, Usage(prompt_tokens=3, completion_tokens=1))
                for r in super().review(originals, rewrites)]  # fmt: skip


OPERATIONS = scripted_operations()
SEQUENCE = baseline_policy(f"sequence:{GROW},{GROW},{IDLE},{GROW}", OPERATIONS)


def setup():
    return evaluation_setup(CountingRewriter(), CountingReviewer(), max_operations=4, seed=0)


def test_one_episode_per_seed_by_hand():
    # grow, grow, idle, grow on max_operations=4:
    #   poem:  accepted, accepted, no gain, accepted   8 queries, 3 evolutions, kept (grow, grow, idle, grow)
    #   river: no gain x 4 (stubborn)                  8 queries, nothing kept
    #   vase:  accepted, eliminated (fragile)          2 + 1 queries, 1 evolution, kept (grow,)
    evaluation = evaluate_policy(SEQUENCE, setup(), SEEDS, batch_size=2)
    costs = evaluation.costs
    assert evaluation.num_episodes == 3 and evaluation.query_budget is None
    assert (costs.num_queries, costs.num_rewrites, costs.num_evolutions) == (19, 10, 4)
    assert (costs.num_instructions, costs.num_deep_instructions) == (2, 1)
    assert evaluation.num_sequences == 2
    assert costs.accepted_rate == pytest.approx(0.4)
    # 10 rewrites x (2 + 1) tokens, 9 reviews x (3 + 1)
    assert costs.prompt_tokens["rewriter"] == 20 and costs.completion_tokens["rewriter"] == 10
    assert costs.prompt_tokens["reviewer"] == 27 and costs.completion_tokens["reviewer"] == 9
    assert evaluation.usage["rewriter"].queries == 10 and evaluation.usage["reviewer"].queries == 9
    assert costs.ratios() == {
        "queries_per_evolution": 19 / 4,
        "queries_per_instruction": 19 / 2,
        "queries_per_deep_instruction": 19.0,
        "tokens_per_instruction": 66 / 2,
        "tokens_per_deep_instruction": 66.0,
    }
    assert math.isnan(evaluation.mean_novelty)  # no embedder
    # The same counts with a min_evolutions of 1: both kept instructions are deep
    assert evaluate_policy(SEQUENCE, setup(), SEEDS, min_evolutions=1).costs.queries_per_deep_instruction == 9.5


def test_fixed_budget_by_hand():
    # One seed per batch: the first pass spends 8 + 8 + 3 = 19 < 20, so a second pass starts; its poem (8 more)
    # reaches the budget and ends the measure: 4 episodes, 27 queries, the poem kept twice (deep) and the vase once
    evaluation = evaluate_policy(SEQUENCE, setup(), SEEDS, query_budget=20, batch_size=1)
    costs = evaluation.costs
    assert (evaluation.num_episodes, costs.num_queries, evaluation.query_budget) == (4, 27, 20)
    assert (costs.num_evolutions, costs.num_instructions, costs.num_deep_instructions) == (7, 3, 2)
    assert costs.queries_per_deep_instruction == 13.5
    assert evaluation.num_sequences == 2  # the same two sequences again
    # A budget the first pass covers: exactly that pass
    assert evaluate_policy(SEQUENCE, setup(), SEEDS, query_budget=19, batch_size=3).costs.num_queries == 19


def _always(name):
    def make_act_fn(setup, seed):
        def act(states):
            ids = torch.full((len(states),), [*OPERATIONS.names, STOP_ACTION].index(name))
            return ids, torch.zeros(len(states)), torch.zeros(len(states))

        return act

    return ActPolicy("custom", OPERATIONS, make_act_fn)


@pytest.mark.timeout(60)  # a policy that spends nothing must end the budgeted mode
def test_empty_cases():
    stops = evaluate_policy(_always(STOP_ACTION), setup(), SEEDS, query_budget=100)
    assert stops.num_episodes == 3 and stops.costs.num_queries == 0
    assert all(value == math.inf for value in stops.costs.ratios().values())
    assert math.isnan(stops.costs.accepted_rate)  # a rate of nothing is undefined
    idle = evaluate_policy(_always(IDLE), setup(), SEEDS)
    assert (idle.costs.num_queries, idle.costs.accepted_rate, idle.num_sequences) == (24, 0.0, 0)
    assert idle.costs.queries_per_instruction == math.inf


def test_novelty_of_the_kept_instructions():
    class Embedder:
        def encode(self, texts):
            vectors = {f"{POEM} (grown) (grown) (grown)": [1.0, 0.0], f"{VASE} (grown)": [0.6, 0.8]}
            return torch.tensor([vectors[text] for text in texts])

    evaluation = evaluate_policy(SEQUENCE, setup(), SEEDS, embedder=Embedder())
    assert evaluation.mean_novelty == pytest.approx((1.0 + 0.4) / 2)  # in seed order: 1, then 1 - cos


def test_refuses_bad_arguments():
    with pytest.raises(ValueError, match="seeds"):
        evaluate_policy(SEQUENCE, setup(), [])
    with pytest.raises(ValueError, match="query_budget"):
        evaluate_policy(SEQUENCE, setup(), SEEDS, query_budget=0)
