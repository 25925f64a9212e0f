import doctest
import math

import pytest
import torch

from instrl_trl.environment import STOP_ACTION
from instrl_trl.policies import report as policy_report_module
from instrl_trl.policies.baselines import sequence_policy
from instrl_trl.policies.report import operation_entropy, policy_report, rollout_report
from instrl_trl.trainer.rollout import collect_rollouts
from tests.trainer.scripted_world import GROW, IDLE, POEM, SEEDS, VASE, make_scripted_env


ACTIONS = [*make_scripted_env().action_names]


class LookupEmbedder:
    """Fixed unit vectors per text, so that novelties are known by hand."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors
        self.calls = []

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        return torch.tensor([self.vectors[text] for text in texts])


POEM_KEPT, VASE_KEPT = f"{POEM} (grown) (grown) (grown)", f"{VASE} (grown)"


def test_policy_report_counts_by_hand():
    # grow, grow, idle, grow on max_operations=4:
    #   poem:  accepted, accepted, no gain, accepted   8 queries, 3 evolutions, kept (grow, grow, idle, grow)
    #   river: no gain x 4 (stubborn)                  8 queries, nothing kept
    #   vase:  accepted, eliminated (fragile)          2 + 1 queries, 1 evolution, kept (grow,)
    embedder = LookupEmbedder({POEM_KEPT: [1.0, 0.0], VASE_KEPT: [0.6, 0.8]})
    act_fn = sequence_policy(ACTIONS, [GROW, GROW, IDLE, GROW])
    report = policy_report(make_scripted_env, act_fn, SEEDS, embedder=embedder)

    assert report.num_episodes == 3
    assert report.num_queries == 19
    assert report.num_rewrites == 10
    assert report.num_evolutions == 4
    assert report.accepted_rate == pytest.approx(0.4)
    assert report.num_instructions == 2
    assert report.queries_per_instruction == pytest.approx(9.5)
    assert report.num_deep_instructions == 1
    assert report.queries_per_deep_instruction == pytest.approx(19.0)
    assert report.num_sequences == 2
    # 8 grow, 2 idle
    assert report.operation_entropy == pytest.approx(-(0.8 * math.log2(0.8) + 0.2 * math.log2(0.2)))
    # kept instructions in episode order: the poem scores 1.0, the vase 1 - cos = 1 - 0.6
    assert embedder.calls == [[POEM_KEPT, VASE_KEPT]]
    assert report.mean_novelty == pytest.approx((1.0 + 0.4) / 2)

    deeper = policy_report(make_scripted_env, act_fn, SEEDS, min_evolutions=1)
    assert deeper.num_deep_instructions == 2 and deeper.queries_per_deep_instruction == pytest.approx(9.5)
    assert math.isnan(deeper.mean_novelty)  # no embedder


def test_policy_report_of_a_policy_that_keeps_nothing_is_infinitely_wasteful():
    def always_idle(states):
        n = len(states)
        return torch.full((n,), ACTIONS.index(IDLE)), torch.zeros(n), torch.zeros(n)

    report = policy_report(
        lambda: make_scripted_env(max_operations=2), always_idle, SEEDS, embedder=LookupEmbedder({})
    )
    assert (report.num_queries, report.num_rewrites, report.num_evolutions) == (12, 6, 0)
    assert report.queries_per_instruction == math.inf and report.queries_per_deep_instruction == math.inf
    assert report.accepted_rate == 0.0 and report.num_sequences == 0 and report.operation_entropy == 0.0
    assert math.isnan(report.mean_novelty)

    # A rollout collected elsewhere (here a policy that stops at once) gives its report too
    report = rollout_report(collect_rollouts(make_scripted_env(), _stop, SEEDS, _zero))
    assert (report.num_queries, report.num_rewrites) == (0, 0)
    assert math.isnan(report.accepted_rate) and math.isnan(report.operation_entropy)


def _stop(states):
    n = len(states)
    return torch.full((n,), ACTIONS.index(STOP_ACTION)), torch.zeros(n), torch.zeros(n)


def _zero(result):
    return torch.zeros(len(result.operation)), {}


def test_operation_entropy_in_bits_without_stop():
    assert operation_entropy(["a", "b", "c", "d", STOP_ACTION]) == pytest.approx(2.0)
    assert operation_entropy(["a", "a", STOP_ACTION]) == 0.0
    assert math.isnan(operation_entropy([STOP_ACTION]))


def test_policy_report_refuses_an_environment_that_survives_elimination():
    with pytest.raises(ValueError, match="end_on_elimination"):
        policy_report(lambda: make_scripted_env(end_on_elimination=False), _stop, SEEDS)


def test_docstring_example():
    results = doctest.testmod(policy_report_module)
    assert results.attempted > 0 and results.failed == 0
