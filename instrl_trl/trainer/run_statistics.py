"""Counts of a training run over all processes: what the logs, the query budget and the policy card report."""

from dataclasses import dataclass, field

import torch

from ..backends.accounting import ROLES, QueryAccounting
from ..backends.costs import MIN_EVOLUTIONS, CostSummary, rate
from ..backends.review_statistics import ReviewStatistics
from ..environment import STOP_ACTION
from .rollout import RolloutBatch


@dataclass
class RolloutTotals:
    r"""
    Sums over one rollout (over all processes once reduced).

    Parameters:
        num_episodes (`int`), num_transitions (`int`), reward_sum (`float`), num_accepted (`int`),
        num_queries (`int`), num_rewrites (`int`):
            Episodes, steps, total reward, accepted steps (evolutions), LLM queries, and steps that were not `stop`.
        operation_counts (`dict[str, int]`):
            How often each action was taken.
        num_instructions (`int`), num_deep_instructions (`int`):
            Episodes that kept an instruction, and those whose kept instruction has at least `MIN_EVOLUTIONS`
            evolutions (see [`~instrl_trl.backends.costs.CostSummary`]).
    """

    num_episodes: int
    num_transitions: int
    reward_sum: float
    num_accepted: int
    num_queries: int
    num_rewrites: int
    operation_counts: dict[str, int]
    num_instructions: int = 0
    num_deep_instructions: int = 0

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
                sum(bool(evolutions) for evolutions in rollout.evolutions),
                sum(len(evolutions) >= MIN_EVOLUTIONS for evolutions in rollout.evolutions),
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
            num_instructions=int(values[6]),
            num_deep_instructions=int(values[7]),
            operation_counts={name: int(count) for name, count in zip(action_names, values[8:], strict=True)},
        )

    def costs(self) -> CostSummary:
        """What these episodes' queries bought (the ratios of [`~instrl_trl.backends.costs.CostSummary`])."""
        return _costs(self)


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
    num_instructions: int = 0
    num_deep_instructions: int = 0

    def add(self, totals: RolloutTotals) -> None:
        self.num_episodes += totals.num_episodes
        self.num_transitions += totals.num_transitions
        self.reward_sum += totals.reward_sum
        self.num_accepted += totals.num_accepted
        self.num_queries += totals.num_queries
        self.num_rewrites += totals.num_rewrites
        self.num_instructions += totals.num_instructions
        self.num_deep_instructions += totals.num_deep_instructions
        for name, count in totals.operation_counts.items():
            self.operation_counts[name] = self.operation_counts.get(name, 0) + count

    @property
    def mean_episode_reward(self) -> float | None:
        return self.reward_sum / self.num_episodes if self.num_episodes else None

    def costs(self, usage_totals: dict[str, dict[str, float]] | None = None) -> CostSummary:
        """
        What training's queries bought since the start (the ratios of
        [`~instrl_trl.backends.costs.CostSummary`]), with the tokens of `usage_totals` (per-role usage) when given.
        """
        return _costs(self, usage_totals)

    def frequency(self, name: str) -> float | None:
        return self.operation_counts.get(name, 0) / self.num_transitions if self.num_transitions else None

    def state_dict(self) -> dict:
        return {key: value for key, value in vars(self).items() if key != "action_names"}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def _costs(totals: "RolloutTotals | RunStatistics", usage_totals: dict | None = None) -> CostSummary:
    usage_totals = usage_totals or {}
    return CostSummary(
        num_queries=totals.num_queries,
        num_evolutions=totals.num_accepted,
        num_instructions=totals.num_instructions,
        num_deep_instructions=totals.num_deep_instructions,
        num_rewrites=totals.num_rewrites,
        prompt_tokens={role: int(usage.get("prompt_tokens", 0)) for role, usage in usage_totals.items()},
        completion_tokens={role: int(usage.get("completion_tokens", 0)) for role, usage in usage_totals.items()},
    )


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
    query and operation keys from the totals over all processes (`queries/*` are running totals since the start,
    except the ratios `queries/per_*`, this rollout's, `inf` when it bought nothing: the trainer's `log` leaves such
    a value out of its window's mean).
    """
    rewards = torch.cat(rollout.rewards)
    costs = totals.costs()
    metrics = {
        "reward": rewards.mean().item(),
        "reward_std": rewards.std().item() if len(rewards) > 1 else 0.0,
        **{
            f"rewards/{name}/mean": torch.nanmean(torch.cat(v)).item() for name, v in rollout.reward_components.items()
        },
        "episode/reward": totals.reward_sum / totals.num_episodes,
        "episode/length": totals.num_transitions / totals.num_episodes,
        "accepted_rate": rate(totals.num_accepted, totals.num_rewrites),
        "queries/total": float(statistics.num_queries),
        **{
            f"queries/{name.removeprefix('queries_')}": value
            for name, value in costs.ratios().items()
            if name.startswith("queries_")
        },
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
