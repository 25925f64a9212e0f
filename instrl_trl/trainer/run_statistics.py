"""Counts of a training run over all processes: what the logs, the query budget and the policy card report."""

from dataclasses import dataclass, field

import torch

from ..environment import STOP_ACTION
from .rollout import RolloutBatch


@dataclass
class RolloutTotals:
    r"""
    Sums over one rollout (over all processes once reduced).

    Parameters:
        num_episodes (`int`), num_transitions (`int`), reward_sum (`float`), num_accepted (`int`),
        num_queries (`int`), num_rewrites (`int`):
            Episodes, steps, total reward, accepted instructions, LLM queries, and steps that were not `stop`.
        operation_counts (`dict[str, int]`):
            How often each action was taken.
    """

    num_episodes: int
    num_transitions: int
    reward_sum: float
    num_accepted: int
    num_queries: int
    num_rewrites: int
    operation_counts: dict[str, int]

    @staticmethod
    def local_vector(rollout: RolloutBatch, action_names: list[str]) -> torch.Tensor:
        """This process's sums as one fixed-size vector, so that a single all-reduce gathers them."""
        rewards = torch.cat(rollout.rewards) if rollout.rewards else torch.zeros(0)
        return torch.tensor(
            [
                rollout.num_episodes,
                len(rollout),
                rewards.sum().item(),
                sum(rollout.accepted),
                sum(rollout.queries),
                sum(operation != STOP_ACTION for operation in rollout.operations),
                *[rollout.operations.count(name) for name in action_names],
            ],
            dtype=torch.float64,
        )

    @classmethod
    def from_vector(cls, vector: torch.Tensor, action_names: list[str]) -> "RolloutTotals":
        values = vector.tolist()
        return cls(
            num_episodes=int(values[0]),
            num_transitions=int(values[1]),
            reward_sum=values[2],
            num_accepted=int(values[3]),
            num_queries=int(values[4]),
            num_rewrites=int(values[5]),
            operation_counts={name: int(count) for name, count in zip(action_names, values[6:], strict=True)},
        )

    @property
    def queries_per_accepted(self) -> float:
        return self.num_queries / self.num_accepted if self.num_accepted else float("nan")

    @property
    def accepted_rate(self) -> float:
        return self.num_accepted / self.num_rewrites if self.num_rewrites else 0.0


@dataclass
class RunStatistics:
    """Running totals since the start of training; saved in checkpoints."""

    action_names: list[str]
    num_episodes: int = 0
    num_transitions: int = 0
    reward_sum: float = 0.0
    num_accepted: int = 0
    num_queries: int = 0
    num_rewrites: int = 0
    operation_counts: dict[str, int] = field(default_factory=dict)

    def add(self, totals: RolloutTotals) -> None:
        self.num_episodes += totals.num_episodes
        self.num_transitions += totals.num_transitions
        self.reward_sum += totals.reward_sum
        self.num_accepted += totals.num_accepted
        self.num_queries += totals.num_queries
        self.num_rewrites += totals.num_rewrites
        for name, count in totals.operation_counts.items():
            self.operation_counts[name] = self.operation_counts.get(name, 0) + count

    @property
    def mean_episode_reward(self) -> float | None:
        return self.reward_sum / self.num_episodes if self.num_episodes else None

    @property
    def accepted_rate(self) -> float | None:
        return self.num_accepted / self.num_rewrites if self.num_rewrites else None

    @property
    def queries_per_accepted(self) -> float | None:
        return self.num_queries / self.num_accepted if self.num_accepted else None

    def frequency(self, name: str) -> float | None:
        return self.operation_counts.get(name, 0) / self.num_transitions if self.num_transitions else None

    def state_dict(self) -> dict:
        return {key: value for key, value in vars(self).items() if key != "action_names"}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
