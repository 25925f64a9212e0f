"""
What one episode per seed shows of an operation policy: the benchmark's table row, the same for a trained policy and
for any baseline.

Every policy plays under the same rule: one episode per seed on a fresh environment, an eliminated rewrite ends its
episode, `max_operations` caps it. An episode that kept at least one evolution yields one instruction, its last
accepted one; the report divides the queries of *all* episodes by the number of such instructions, and by the number
of those with at least `min_evolutions` accepted evolutions (a deep instruction).
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..embeddings import SentenceEmbedder
from ..environment import STOP_ACTION, Evolution, InstructionEnv, StepResult
from ..policy import ActFn
from ..rewards.diversity import NoveltyReward
from ..trainer.rollout import RolloutBatch, collect_rollouts


@dataclass(frozen=True)
class PolicyReport:
    r"""
    One policy's episodes, one per seed, summed up.

    Parameters:
        num_episodes (`int`):
            Episodes played (one per seed).
        num_queries (`int`):
            LLM queries spent by all episodes (a rewrite and, unless eliminated, a review per operation).
        num_rewrites (`int`):
            Steps that applied an operation (not `stop`).
        num_evolutions (`int`):
            Accepted steps: rewrites that passed the reviewer and the elimination rules.
        num_instructions (`int`):
            Episodes that kept at least one evolution: each yields one instruction, its last accepted one.
        num_deep_instructions (`int`):
            Kept instructions made by at least `min_evolutions` accepted evolutions.
        min_evolutions (`int`):
            The depth a kept instruction needs to count in `num_deep_instructions`.
        num_sequences (`int`):
            Distinct operation sequences among the kept instructions (the operations its episode tried up to it,
            including those that added nothing).
        operation_entropy (`float`):
            Entropy in bits of the operations chosen (every step but `stop`); `NaN` when none was chosen.
        mean_novelty (`float`):
            Mean novelty of the kept instructions ([`~instrl_trl.rewards.NoveltyReward`], in episode order); `NaN`
            without an embedder or without kept instructions.
    """

    num_episodes: int
    num_queries: int
    num_rewrites: int
    num_evolutions: int
    num_instructions: int
    num_deep_instructions: int
    min_evolutions: int
    num_sequences: int
    operation_entropy: float
    mean_novelty: float

    @property
    def queries_per_instruction(self) -> float:
        """Queries per kept instruction (`inf` when none was kept)."""
        return queries_per_instruction(self.num_queries, self.num_instructions)

    @property
    def queries_per_deep_instruction(self) -> float:
        """Queries per kept instruction of at least `min_evolutions` evolutions (`inf` when there is none)."""
        return queries_per_instruction(self.num_queries, self.num_deep_instructions)

    @property
    def accepted_rate(self) -> float:
        """Accepted steps per rewrite (`NaN` when nothing was rewritten)."""
        return self.num_evolutions / self.num_rewrites if self.num_rewrites else math.nan


def queries_per_instruction(num_queries: int, num_instructions: int) -> float:
    """
    `num_queries / num_instructions`, `inf` when no instruction was made: a policy that buys nothing is infinitely
    wasteful, and `inf` sorts last when looking for the best policy (a `NaN` would not sort).
    """
    return num_queries / num_instructions if num_instructions else math.inf


def is_deep(evolutions: Sequence[Evolution], min_evolutions: int) -> bool:
    """Whether an episode kept an instruction (its last evolution) made by at least `min_evolutions` evolutions."""
    return bool(evolutions) and len(evolutions) >= min_evolutions


def operation_entropy(operations: Sequence[str]) -> float:
    """
    Entropy in bits of the empirical distribution of `operations`, `stop` left out; `NaN` when nothing is left.

    Example:
    ```python
    >>> operation_entropy(["deepening", "breadth", "stop"])
    1.0

    ```
    """
    counts = Counter(operation for operation in operations if operation != STOP_ACTION)
    total = sum(counts.values())
    if not total:
        return math.nan
    return sum(count / total * math.log2(total / count) for count in counts.values())


def mean_novelty(instructions: list[str], embedder: SentenceEmbedder | None) -> float:
    """
    Mean [`~instrl_trl.rewards.NoveltyReward`] of `instructions` taken in order (each against all those before it,
    the first scores 1.0): the project's dataset diversity. `NaN` without an embedder or without instructions.
    """
    if embedder is None or not instructions:
        return math.nan
    novelty = NoveltyReward(embedder, max_memory=len(instructions))
    rewards = novelty(instructions, instructions, accepted=[True] * len(instructions))
    return sum(rewards) / len(rewards)


def rollout_report(
    rollout: RolloutBatch, min_evolutions: int = 3, embedder: SentenceEmbedder | None = None
) -> PolicyReport:
    """
    The [`PolicyReport`] of an already collected rollout (one episode per seed, see
    [`~instrl_trl.trainer.rollout.collect_rollouts`]). `embedder=None` skips the novelty (`NaN`).
    """
    kept = [evolutions for evolutions in rollout.evolutions if evolutions]
    return PolicyReport(
        num_episodes=rollout.num_episodes,
        num_queries=sum(rollout.queries),
        num_rewrites=sum(operation != STOP_ACTION for operation in rollout.operations),
        num_evolutions=sum(rollout.accepted),
        num_instructions=len(kept),
        num_deep_instructions=sum(is_deep(evolutions, min_evolutions) for evolutions in kept),
        min_evolutions=min_evolutions,
        num_sequences=len({evolutions[-1].operations for evolutions in kept}),
        operation_entropy=operation_entropy(rollout.operations),
        mean_novelty=mean_novelty([evolutions[-1].instruction for evolutions in kept], embedder),
    )


def _no_rewards(result: StepResult) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return torch.zeros(len(result.operation)), {}


def check_measurement_env(env: InstructionEnv) -> None:
    """Raises a `ValueError` unless `env` ends an episode on elimination, the one rule every policy is measured by."""
    if not env.end_on_elimination:
        raise ValueError(
            "The environment has `end_on_elimination=False`: an eliminated rewrite would not end its episode. Every "
            "policy is measured under the same rule; build the environment with `end_on_elimination=True`."
        )


def policy_report(
    make_env: Callable[[], InstructionEnv],
    act_fn: ActFn,
    seeds: list[str],
    min_evolutions: int = 3,
    embedder: SentenceEmbedder | None = None,
) -> PolicyReport:
    r"""
    Plays one episode per seed with `act_fn` on a fresh environment and reports it.

    Args:
        make_env (`Callable[[], InstructionEnv]`):
            Builds the environment; pass the same one for every policy compared, so that all play by the same
            operations, roles, `max_operations` and run seed. It must end an episode on elimination.
        act_fn ([`~instrl_trl.policy.ActFn`]):
            The policy: a trained one, or a baseline from [`~instrl_trl.policies.baselines`].
        seeds (`list[str]`):
            Seed instructions, one episode each.
        min_evolutions (`int`, *optional*, defaults to `3`):
            Accepted evolutions a kept instruction needs to count as deep.
        embedder ([`~instrl_trl.embeddings.SentenceEmbedder`] or `None`, *optional*, defaults to `None`):
            Embeds the kept instructions for their mean novelty; `None` skips it (`NaN`).

    Returns:
        [`PolicyReport`]
    """
    env = make_env()
    check_measurement_env(env)
    rollout = collect_rollouts(env, act_fn, seeds, _no_rewards)
    return rollout_report(rollout, min_evolutions, embedder)
