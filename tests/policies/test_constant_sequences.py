import doctest
import itertools
import math
import zlib
from fractions import Fraction

import pytest

from instrl_trl.backends.base import Review
from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
from instrl_trl.environment import InstructionEnv
from instrl_trl.generation.policies import baseline_policy
from instrl_trl.generation.policy_evaluation import evaluate_policy, evaluation_setup
from instrl_trl.operations import build_operation_library
from instrl_trl.policies import constant_sequences
from instrl_trl.policies.constant_sequences import best_constant_sequence, sequence_key
from tests.trainer.scripted_world import BREAK, GROW, SEEDS, make_random_world_env, make_scripted_env


@pytest.mark.parametrize(
    ("min_evolutions", "sequence", "num_queries", "num_deep"),
    [
        # poem, river, vase: 2 + 2 + 2 queries; poem and vase kept one evolution each
        (1, (GROW,), 6, 2),
        # poem 4, river 4, vase 2 + 1 (eliminated by the second grow): only the poem is deep
        (2, (GROW, GROW), 11, 1),
        (3, (GROW, GROW, GROW), 15, 1),
        # three evolutions in three steps is the most: nothing is deep, so the shortest, alphabetically first wins
        (4, (BREAK,), 3, 0),
    ],
)
def test_best_constant_sequence_by_hand(min_evolutions, sequence, num_queries, num_deep):
    best, score = best_constant_sequence(make_scripted_env, SEEDS, max_length=3, min_evolutions=min_evolutions)
    assert best == sequence
    assert (score.costs.num_queries, score.costs.num_deep_instructions) == (num_queries, num_deep)
    assert score.costs.queries_per_deep_instruction == (num_queries / num_deep if num_deep else math.inf)
    assert score.num_candidates == 3 + 9 + 27
    assert 3 <= score.num_evaluated <= score.num_candidates


class NoisyRulesReviewer(RulesReviewer):
    """The rules reviewer, but a seeded third of the rewrites (by their text) add nothing: no sequence is perfect."""

    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        reviews = super().review(originals, rewrites)
        return [
            Review(False, "Equal") if zlib.crc32(rewrite.encode()) % 3 == 0 else review
            for rewrite, review in zip(rewrites, reviews, strict=True)
        ]


def brute_force(make_env, seeds, max_length, min_evolutions):
    """
    Every sequence played from scratch with the sequence policy through the one policy evaluation: the reference the
    search must equal.
    """
    env = make_env()
    setup = evaluation_setup(env.rewriter, env.reviewer, env.max_operations, env.seed)
    keys = []
    for length in range(1, max_length + 1):
        for sequence in itertools.product(env.operations.names, repeat=length):
            policy = baseline_policy(f"sequence:{','.join(sequence)}", env.operations)
            costs = evaluate_policy(policy, setup, seeds, min_evolutions=min_evolutions).costs
            num_queries, num_deep = costs.num_queries, costs.num_deep_instructions
            # The documented order, written out again here: fewest queries per deep instruction, most deep
            # instructions, shortest, alphabetically first
            keys.append((Fraction(num_queries, num_deep) if num_deep else math.inf, -num_deep, length, sequence))
    return min(keys)


@pytest.mark.parametrize(
    ("operations", "reviewer", "min_evolutions"),
    [
        (["add_constraints", "concretizing", "breadth"], RulesReviewer, 3),
        (["deepening", "concretizing", "increase_reasoning_steps", "breadth"], RulesReviewer, 2),
        (["add_constraints", "deepening", "concretizing", "breadth"], NoisyRulesReviewer, 2),
    ],
)
def test_best_constant_sequence_equals_brute_force(quickstart_seeds, operations, reviewer, min_evolutions):
    library = build_operation_library(operations)
    seeds = quickstart_seeds["instruction"][:12]

    def make_env():
        return InstructionEnv(library, RulesRewriter(), reviewer(), max_operations=3)

    sequence, score = best_constant_sequence(make_env, seeds, max_length=3, min_evolutions=min_evolutions)
    expected = brute_force(make_env, seeds, 3, min_evolutions)
    assert sequence_key(sequence, score.costs.num_queries, score.costs.num_deep_instructions) == expected
    # a case where depth is reachable, so the order is not only tie-breaks
    assert score.costs.num_deep_instructions > 0
    assert score.num_evaluated < score.num_candidates  # and the bound pruned something


def test_sequence_key_orders_by_score_then_depth_count_then_length_then_name():
    keys = [
        sequence_key(("b", "a"), 8, 2),  # 4 queries per deep instruction, with more of them...
        sequence_key(("b",), 4, 1),  # ...beats the same ratio with fewer
        sequence_key(("c",), 9, 2),
        sequence_key(("a", "a"), 9, 2),  # the shorter wins at equal ratio and count
        sequence_key(("b", "b"), 9, 2),  # then the alphabetically first
        sequence_key(("a",), 1, 0),  # no deep instruction at all: last
    ]
    assert sorted(keys) == keys


def test_best_constant_sequence_checks_its_arguments():
    with pytest.raises(ValueError, match="max_length"):
        best_constant_sequence(make_scripted_env, SEEDS, max_length=5)  # the environment stops at 4 operations
    with pytest.raises(ValueError, match="end_on_elimination"):
        best_constant_sequence(lambda: make_scripted_env(end_on_elimination=False), SEEDS, max_length=2)
    with pytest.raises(ValueError, match="min_evolutions"):
        best_constant_sequence(make_scripted_env, SEEDS, max_length=2, min_evolutions=0)
    with pytest.raises(ValueError, match="seeds"):
        best_constant_sequence(make_scripted_env, [], max_length=2)


@pytest.mark.parametrize("num_seeds", [2, 3])
@pytest.mark.parametrize("min_evolutions", [1, 2, 3])
def test_best_constant_sequence_equals_brute_force_in_random_worlds(num_seeds, min_evolutions):
    # Few seeds give many exact ties, where the bound's depth-count and length terms decide what may be pruned
    seeds = [f"Seed instruction number {i}." for i in range(num_seeds)]
    for world in range(60):

        def make_env(world=world):
            return make_random_world_env(world)

        sequence, score = best_constant_sequence(make_env, seeds, max_length=3, min_evolutions=min_evolutions)
        expected = brute_force(make_env, seeds, 3, min_evolutions)
        costs = score.costs
        assert sequence_key(sequence, costs.num_queries, costs.num_deep_instructions) == expected, f"world {world}"


def test_docstring_example():
    results = doctest.testmod(constant_sequences)
    assert results.attempted > 0 and results.failed == 0
