"""
The best constant operation sequence: the best fixed recipe, blind to the instruction, and so the baseline a policy
that reads the instruction must beat.

A constant sequence applies the same operations, in the same order, to every seed and then stops (an eliminated
episode stops spending). [`best_constant_sequence`] finds the exact best one over all sequences up to a length, by a
depth-first search over the tree of prefixes, each node holding the episodes its prefix leaves running:

```
                     ()                       one running episode per seed
          /          |          \
      (a,)         (b,)   ...   (f,)          each child: one env step of its parent's copied episodes
     /  |  \
 (a,a) (a,b) ...                              pruned when no extension can beat the best sequence so far
```

Sequences sharing a prefix share its steps, so the search plays each prefix once. No transition is memoised: a
rewrite request carries the episode's history, which is the prefix itself, so no two nodes share one.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..backends.costs import CostSummary
from ..environment import Episode, InstructionEnv


def check_measurement_env(env: InstructionEnv) -> None:
    """Raises a `ValueError` unless `env` ends an episode on elimination, the one rule every policy is measured by."""
    if not env.end_on_elimination:
        raise ValueError(
            "The environment has `end_on_elimination=False`: an eliminated rewrite would not end its episode. Every "
            "policy is measured under the same rule; build the environment with `end_on_elimination=True`."
        )


def is_deep(evolutions: list, min_evolutions: int) -> bool:
    """Whether an episode kept an instruction (its last evolution) made by at least `min_evolutions` evolutions."""
    return bool(evolutions) and len(evolutions) >= min_evolutions


@dataclass(frozen=True)
class ConstantSequenceScore:
    r"""
    How a constant operation sequence did on the search's seeds, and what the search cost.

    Parameters:
        costs ([`~instrl_trl.backends.costs.CostSummary`]):
            What its episodes (one per seed) spent and kept: queries, evolutions, kept and deep instructions.
        num_evaluated (`int`):
            Sequences whose episodes the search played (the others were pruned).
        num_candidates (`int`):
            All sequences of length 1 to `max_length` over the environment's operations.
    """

    costs: CostSummary
    num_evaluated: int
    num_candidates: int


@dataclass
class _Node:
    sequence: tuple[str, ...]
    running: list[Episode]
    num_queries: int
    # Episodes already ended: deep kept instructions, kept instructions, evolutions
    num_ended_deep: int = 0
    num_ended_kept: int = 0
    num_ended_evolutions: int = 0

    def num_deep(self, min_evolutions: int) -> int:
        return self.num_ended_deep + sum(is_deep(episode.accepted, min_evolutions) for episode in self.running)

    def costs(self, min_evolutions: int) -> CostSummary:
        return CostSummary(
            num_queries=self.num_queries,
            num_evolutions=self.num_ended_evolutions + sum(len(episode.accepted) for episode in self.running),
            num_instructions=self.num_ended_kept + sum(bool(episode.accepted) for episode in self.running),
            num_deep_instructions=self.num_deep(min_evolutions),
            min_evolutions=min_evolutions,
        )


def sequence_key(sequence: tuple[str, ...], num_queries: int, num_deep: int) -> tuple:
    """
    The order of [`best_constant_sequence`], smallest best: fewer queries per deep instruction (exact fractions,
    `inf` for none), then more deep instructions, then shorter, then the alphabetically first operation names.
    """
    score = Fraction(num_queries, num_deep) if num_deep else math.inf
    return score, -num_deep, len(sequence), sequence


class _SequenceSearch:
    def __init__(self, env: InstructionEnv, max_length: int, min_evolutions: int):
        self.env = env
        self.max_length = max_length
        self.min_evolutions = min_evolutions
        self.best: tuple | None = None
        self.best_node: _Node | None = None
        self.num_evaluated = 0

    def key(self, node: _Node) -> tuple:
        return sequence_key(node.sequence, node.num_queries, node.num_deep(self.min_evolutions))

    def step(self, node: _Node, operation: str) -> _Node:
        episodes = [episode.copy() for episode in node.running]
        self.env.resume(episodes)
        result = self.env.step([operation] * len(episodes))
        self.num_evaluated += 1
        ended = [episode for episode in episodes if episode.done]
        min_evolutions = self.min_evolutions
        child = _Node(
            sequence=(*node.sequence, operation),
            running=[episode for episode in episodes if not episode.done],
            num_queries=node.num_queries + sum(result.queries),
            num_ended_deep=node.num_ended_deep + sum(is_deep(episode.accepted, min_evolutions) for episode in ended),
            num_ended_kept=node.num_ended_kept + sum(bool(episode.accepted) for episode in ended),
            num_ended_evolutions=node.num_ended_evolutions + sum(len(episode.accepted) for episode in ended),
        )
        key = self.key(child)
        if self.best is None or key < self.best:
            self.best, self.best_node = key, child
        return child

    def extension_bound(self, node: _Node) -> tuple:
        """
        A key that no longer sequence starting with `node.sequence` can beat ([`sequence_key`] order).

        Score: every running episode spends at least one query (its rewrite) on the next step. One that becomes deep
        needs `need` more accepted steps of two queries (rewrite and review), so at least `2 * need - 1` queries
        beyond that first one, and it can only do so if `need` fits in the steps left. Whichever `k` episodes become
        deep, the queries are at least the `k` cheapest such costs: the bound is the best ratio over `k`. Ties: at
        most all those episodes become deep, the sequence is at least one longer, and `node.sequence` sorts before
        every sequence it starts.
        """
        num_deep = node.num_deep(self.min_evolutions)
        steps_left = self.max_length - len(node.sequence)
        needs = [self.min_evolutions - len(episode.accepted) for episode in node.running]
        costs = sorted(2 * need - 1 for need in needs if 0 < need <= steps_left)
        num_queries = node.num_queries + len(node.running)
        score = Fraction(num_queries, num_deep) if num_deep else math.inf
        for k, cost in enumerate(costs, start=1):
            num_queries += cost
            score = min(score, Fraction(num_queries, num_deep + k))
        return score, -(num_deep + len(costs)), len(node.sequence) + 1, node.sequence

    def descend(self, node: _Node) -> None:
        if len(node.sequence) == self.max_length:
            return
        if self.best is not None and self.extension_bound(node) >= self.best:
            return
        children = [self.step(node, operation) for operation in self.env.operations.names]
        # Most promising children first (lowest bound): a good sequence found early prunes more of the rest
        for child in sorted(children, key=self.extension_bound):
            self.descend(child)


def best_constant_sequence(
    make_env: Callable[[], InstructionEnv], seeds: list[str], max_length: int, min_evolutions: int = 3
) -> tuple[tuple[str, ...], ConstantSequenceScore]:
    r"""
    The exact best constant operation sequence on `seeds`: among all sequences of 1 to `max_length` operations of the
    environment (each applied to every seed, then `stop`), the one with the fewest queries per kept instruction of at
    least `min_evolutions` evolutions; ties go to more such instructions, then to the shorter, then to the
    alphabetically first (see [`sequence_key`]).

    Branch and bound: at a prefix that spent `Q` queries with `N` deep instructions and `R` running episodes, of which
    `D` can still reach `min_evolutions`, no longer sequence can do better than `(Q + R) / (N + D)` (each running
    episode spends a query on the next step; a finer form in `_SequenceSearch.extension_bound`), so the search
    skips the prefix's subtree once that bound is no better than the best sequence found. The result equals a
    brute-force enumeration of all sequences. Replaying it with
    [`~instrl_trl.policies.baselines.sequence_policy`] and [`~instrl_trl.generation.policy_evaluation.evaluate_policy`]
    gives the same numbers when the rewriter and reviewer answer a request the same way each time (the rules engine;
    an LLM with seeded sampling or a response cache).

    Args:
        make_env (`Callable[[], InstructionEnv]`):
            Builds the environment: its operations, roles and run seed. It must end an episode on elimination and
            allow at least `max_length` operations.
        seeds (`list[str]`):
            Seed instructions, one episode each.
        max_length (`int`):
            Longest sequence searched (at most the environment's `max_operations`).
        min_evolutions (`int`, *optional*, defaults to `3`):
            Accepted evolutions a kept instruction needs to count.

    Returns:
        `tuple[tuple[str, ...], ConstantSequenceScore]`: the best sequence and its score.

    Example:
    ```python
    >>> from instrl_trl.backends.rules import RulesReviewer, RulesRewriter
    >>> from instrl_trl.environment import InstructionEnv
    >>> from instrl_trl.operations import build_operation_library

    >>> operations = build_operation_library(["add_constraints", "concretizing"])
    >>> make_env = lambda: InstructionEnv(operations, RulesRewriter(), RulesReviewer(), max_operations=2)
    >>> seeds = ["Write a poem about a city.", "Describe a city at night."]  # a task and an inquiry
    >>> sequence, score = best_constant_sequence(make_env, seeds, 2, min_evolutions=2)
    >>> sequence, score.costs.queries_per_deep_instruction
    (('concretizing', 'add_constraints'), 8.0)

    ```
    """
    if min_evolutions < 1:
        raise ValueError(f"`min_evolutions` must be at least 1, got {min_evolutions}.")
    if not seeds:
        raise ValueError("`seeds` is empty: pass at least one seed instruction.")
    env = make_env()
    check_measurement_env(env)
    if not 1 <= max_length <= env.max_operations:
        raise ValueError(
            f"`max_length` must be between 1 and the environment's `max_operations` ({env.max_operations}), got "
            f"{max_length}; build the environment with `max_operations={max_length}` or search shorter sequences."
        )
    search = _SequenceSearch(env, max_length, min_evolutions)
    search.descend(_Node((), [Episode(seed=seed, instruction=seed) for seed in seeds], 0))
    best = search.best_node
    num_operations = len(env.operations.names)
    return best.sequence, ConstantSequenceScore(
        costs=best.costs(min_evolutions),
        num_evaluated=search.num_evaluated,
        num_candidates=sum(num_operations**length for length in range(1, max_length + 1)),
    )
