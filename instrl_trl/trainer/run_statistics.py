"""Counts of a training run over all processes: what the logs, the query budget and the policy card report."""

import math
from dataclasses import dataclass, field

import torch

from ..backends.accounting import ROLES, QueryAccounting
from ..backends.review_statistics import ReviewStatistics
from ..environment import STOP_ACTION
from .rollout import RolloutBatch


def queries_per_accepted(num_queries: int, num_accepted: int) -> float:
    """
    LLM queries spent per accepted instruction: the query-efficiency figure of the paper. `NaN` when nothing was
    accepted (undefined, as explained variance of a constant target): the trainer's `log` skips NaN values.
    """
    return num_queries / num_accepted if num_accepted else math.nan


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
    def reduce(cls, rollout: RolloutBatch, action_names: list[str], accelerator) -> "RolloutTotals":
        """Sums over all processes: one all-reduce of a fixed-size vector, called in the same order on every rank."""
        local = cls.local_vector(rollout, action_names).to(accelerator.device)
        return cls.from_vector(accelerator.reduce(local, reduction="sum").cpu(), action_names)

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
        return queries_per_accepted(self.num_queries, self.num_accepted)

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
    def queries_per_accepted(self) -> float:
        return queries_per_accepted(self.num_queries, self.num_accepted)

    def frequency(self, name: str) -> float | None:
        return self.operation_counts.get(name, 0) / self.num_transitions if self.num_transitions else None

    def state_dict(self) -> dict:
        return {key: value for key, value in vars(self).items() if key != "action_names"}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


_USAGE_FIELDS = ("queries", "cache_hits", "failures", "prompt_tokens", "completion_tokens", "seconds")


def reduce_usage(accounting: QueryAccounting, accelerator) -> dict[str, dict[str, float]]:
    """Per-role usage (queries, cache hits, failures, tokens, seconds) summed over all processes."""
    local = torch.tensor(
        [[getattr(accounting.usage(role), name) for name in _USAGE_FIELDS] for role in ROLES],
        dtype=torch.float64,
        device=accelerator.device,
    )
    totals = accelerator.reduce(local, reduction="sum").cpu().tolist()
    return {role: dict(zip(_USAGE_FIELDS, values, strict=True)) for role, values in zip(ROLES, totals, strict=True)}


def reduce_review_statistics(statistics: ReviewStatistics, accelerator) -> ReviewStatistics:
    """An LLM reviewer's sums (failed verdicts, P(gain), agreement) summed over all processes."""
    local = torch.tensor(statistics.to_list(), dtype=torch.float64, device=accelerator.device)
    return ReviewStatistics.from_list(accelerator.reduce(local, reduction="sum").cpu().tolist())


def rollout_metrics(
    rollout: RolloutBatch,
    totals: RolloutTotals,
    statistics: RunStatistics,
    usage_totals: dict[str, dict[str, float]],
    cost_multiplier: float,
) -> dict[str, float]:
    """
    What the trainer logs about one rollout: GRPO's reward keys from this process's transitions, and our episode,
    query and operation keys from the totals over all processes (`queries/*` are running totals since the start).
    """
    rewards = torch.cat(rollout.rewards)
    metrics = {
        "reward": rewards.mean().item(),
        "reward_std": rewards.std().item() if len(rewards) > 1 else 0.0,
        **{
            f"rewards/{name}/mean": torch.nanmean(torch.cat(v)).item() for name, v in rollout.reward_components.items()
        },
        "episode/reward": totals.reward_sum / totals.num_episodes,
        "episode/length": totals.num_transitions / totals.num_episodes,
        "accepted_rate": totals.accepted_rate,
        "queries/total": float(statistics.num_queries),
        "queries/per_accepted": totals.queries_per_accepted,
        "cost/multiplier": cost_multiplier,
    }
    for role, usage in usage_totals.items():
        if usage["queries"]:
            metrics[f"queries/{role}"] = usage["queries"]
            metrics[f"queries/{role}/cache_hits"] = usage["cache_hits"]
            metrics[f"queries/{role}/failures"] = usage["failures"]
    metrics["queries/paid"] = sum(usage["queries"] - usage["cache_hits"] for usage in usage_totals.values())
    for name, count in totals.operation_counts.items():
        metrics[f"operations/{name}/frequency"] = count / totals.num_transitions
    return metrics
