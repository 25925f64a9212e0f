"""
Totals of a training run's episodes, one class for both trainers (the PPO policy's rollouts and the instructor's GRPO
episodes): what their logs, their cards and their checkpoints report, and the sums over processes behind them.

The trainers feed it differently (PPO adds a rollout's totals, the instructor's environment adds one episode at a
time), but the counts and the rules that turn them into rates and costs are the same, defined here once.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import torch

from ..operations import STOP_ACTION
from .accounting import ROLES, QueryAccounting
from .costs import MIN_EVOLUTIONS, CostSummary
from .review_statistics import ReviewStatistics


@dataclass
class RunStatistics:
    r"""
    Sums over a run's episodes (on one process, or over all of them once [`reduce`]d); saved in checkpoints.

    Parameters:
        action_names (`list[str]`):
            The operation names and `stop`, in label order: the keys of `operation_counts`.
        num_episodes (`int`), num_transitions (`int`), reward_sum (`float`):
            Episodes, steps taken (`stop` included) and the sum of the episodes' rewards.
        num_accepted (`int`), num_queries (`int`), num_rewrites (`int`), num_stopped (`int`):
            Accepted steps (evolutions), LLM queries spent in the episodes, steps that applied an operation (not
            `stop`), and episodes ended by `stop`.
        num_instructions (`int`), num_deep_instructions (`int`):
            Episodes that kept an instruction, and those whose kept instruction has at least `MIN_EVOLUTIONS`
            evolutions (see [`~instrl_trl.backends.costs.CostSummary`]).
        operation_counts (`dict[str, int]`):
            How often each action was taken.
    """

    action_names: list[str]
    num_episodes: int = 0
    num_transitions: int = 0
    reward_sum: float = 0.0
    num_accepted: int = 0
    num_queries: int = 0
    num_rewrites: int = 0
    num_stopped: int = 0
    num_instructions: int = 0
    num_deep_instructions: int = 0
    operation_counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.action_names = list(self.action_names)
        self.operation_counts = {**dict.fromkeys(self.action_names, 0), **self.operation_counts}

    @classmethod
    def _count_names(cls) -> list[str]:
        """The scalar fields, in the order of [`as_vector`]."""
        return [f.name for f in fields(cls) if f.name not in ("action_names", "operation_counts")]

    def add(self, other: "RunStatistics") -> None:
        """Adds the sums of `other` (e.g. one rollout's, over all processes) to these."""
        for name in self._count_names():
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name, count in other.operation_counts.items():
            self.operation_counts[name] = self.operation_counts.get(name, 0) + count

    def add_episode(
        self, operations: Sequence[str], num_accepted: int, stopped: bool, reward: float, num_queries: int = 0
    ) -> None:
        """
        Records one episode: the operations it applied (in order, `stop` not among them), its accepted evolutions,
        whether it was ended by `stop`, its reward and the LLM queries it spent.
        """
        self.num_episodes += 1
        self.num_transitions += len(operations) + int(stopped)
        self.reward_sum += reward
        self.num_accepted += num_accepted
        self.num_queries += num_queries
        self.num_rewrites += len(operations)
        self.num_stopped += int(stopped)
        self.num_instructions += int(num_accepted > 0)
        self.num_deep_instructions += int(num_accepted >= MIN_EVOLUTIONS)
        for name in [*operations, *([STOP_ACTION] if stopped else [])]:
            self.operation_counts[name] = self.operation_counts.get(name, 0) + 1

    @property
    def mean_episode_reward(self) -> float | None:
        return self.reward_sum / self.num_episodes if self.num_episodes else None

    @property
    def accepted_rate(self) -> float | None:
        """Accepted evolutions per operation applied; `None` before any operation."""
        return self.num_accepted / self.num_rewrites if self.num_rewrites else None

    def frequency(self, name: str) -> float | None:
        """Share of the steps (operations and `stop`) that went to `name`; `None` before any step."""
        return self.operation_counts.get(name, 0) / self.num_transitions if self.num_transitions else None

    def costs(self, usage_totals: dict[str, dict[str, float]] | None = None) -> CostSummary:
        """
        What these episodes' queries bought (the ratios of [`~instrl_trl.backends.costs.CostSummary`]), with the
        tokens of `usage_totals` (per-role usage, as [`reduce_usage`] returns it) when given.
        """
        usage_totals = usage_totals or {}
        return CostSummary(
            num_queries=self.num_queries,
            num_evolutions=self.num_accepted,
            num_instructions=self.num_instructions,
            num_deep_instructions=self.num_deep_instructions,
            num_rewrites=self.num_rewrites,
            prompt_tokens={role: int(usage.get("prompt_tokens", 0)) for role, usage in usage_totals.items()},
            completion_tokens={role: int(usage.get("completion_tokens", 0)) for role, usage in usage_totals.items()},
        )

    def as_vector(self) -> torch.Tensor:
        """These sums as one fixed-size vector (scalars, then one count per action), for a single all-reduce."""
        values = [getattr(self, name) for name in self._count_names()]
        counts = [self.operation_counts.get(name, 0) for name in self.action_names]
        return torch.tensor([*values, *counts], dtype=torch.float64)

    @classmethod
    def from_vector(cls, vector: torch.Tensor, action_names: list[str]) -> "RunStatistics":
        names = cls._count_names()
        values = vector.tolist()
        scalars = {
            name: value if name == "reward_sum" else int(value)
            for name, value in zip(names, values[: len(names)], strict=True)
        }
        counts = {name: int(count) for name, count in zip(action_names, values[len(names) :], strict=True)}
        return cls(action_names, **scalars, operation_counts=counts)

    def reduce(self, accelerator) -> "RunStatistics":
        """The sums over all processes: one all-reduce, called in the same order on every rank."""
        total = accelerator.reduce(self.as_vector().to(accelerator.device), reduction="sum").cpu()
        return self.from_vector(total, self.action_names)

    def state_dict(self) -> dict:
        return {key: value for key, value in vars(self).items() if key != "action_names"}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        # The instructor's checkpoints from before this class was shared kept the action counts as `counts`
        if "counts" in state:
            state["operation_counts"] = state.pop("counts")
        for key, value in state.items():
            setattr(self, key, value)
        self.operation_counts = {**dict.fromkeys(self.action_names, 0), **self.operation_counts}


_USAGE_FIELDS = ("queries", "cache_hits", "failures", "prompt_tokens", "completion_tokens", "seconds")


def reduce_usage(accounting: QueryAccounting, accelerator) -> dict[str, dict[str, float]]:
    """Per-role usage (queries, cache hits, failures, tokens, seconds) summed over all processes."""
    local = torch.tensor(
        [[getattr(accounting.usage(role), name) for name in _USAGE_FIELDS] for role in ROLES],
        dtype=torch.float64,
        device=accelerator.device,
    )
    totals = accelerator.reduce(local, reduction="sum").cpu().tolist()
    # Counts come back as floats from the reduction: made integers again, as the accounting keeps them
    return {
        role: {
            name: value if name == "seconds" else int(value) for name, value in zip(_USAGE_FIELDS, row, strict=True)
        }
        for role, row in zip(ROLES, totals, strict=True)
    }


def local_usage(accounting: QueryAccounting) -> dict[str, dict[str, float]]:
    """This process's per-role usage, in the form of [`reduce_usage`] (before anything was reduced)."""
    return {role: {name: getattr(accounting.usage(role), name) for name in _USAGE_FIELDS} for role in ROLES}


def reduce_review_statistics(statistics: ReviewStatistics, accelerator) -> ReviewStatistics:
    """An LLM reviewer's sums (failed verdicts, P(gain), agreement) summed over all processes."""
    local = torch.tensor(statistics.to_list(), dtype=torch.float64, device=accelerator.device)
    return ReviewStatistics.from_list(accelerator.reduce(local, reduction="sum").cpu().tolist())
