"""Totals of the instructor's episodes: what the logs and the card report, and what a checkpoint keeps."""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EpisodeRecord:
    r"""
    One scored episode.

    Parameters:
        operations (`tuple[str, ...]`): operations applied, in order.
        num_accepted (`int`): evolved instructions that passed the reviewer and the elimination rules.
        stopped (`bool`): whether the instructor called `stop`.
        reward (`float`): the episode's reward.
    """

    operations: tuple[str, ...]
    num_accepted: int
    stopped: bool
    reward: float


class InstructorStatistics:
    r"""
    Running totals over the episodes of a run (on one process; [`as_vector`] and [`from_vector`] let a trainer
    reduce them over processes with one all-reduce).

    Args:
        action_names (`list[str]`):
            The operation names and `stop`, counted per episode.
    """

    def __init__(self, action_names: list[str]):
        self.action_names = list(action_names)
        self.num_episodes = 0
        self.num_stopped = 0
        self.num_accepted = 0
        self.reward_sum = 0.0
        self.counts = dict.fromkeys(self.action_names, 0)

    def add(self, record: EpisodeRecord) -> None:
        self.num_episodes += 1
        self.num_stopped += int(record.stopped)
        self.num_accepted += record.num_accepted
        self.reward_sum += record.reward
        for name in record.operations:
            self.counts[name] = self.counts.get(name, 0) + 1
        if record.stopped:
            self.counts["stop"] = self.counts.get("stop", 0) + 1

    @property
    def num_operations(self) -> int:
        """Operations applied (calls of `stop` not included)."""
        return sum(count for name, count in self.counts.items() if name != "stop")

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.num_episodes if self.num_episodes else None

    @property
    def accepted_rate(self) -> float | None:
        """Accepted instructions per operation applied."""
        return self.num_accepted / self.num_operations if self.num_operations else None

    def frequency(self, name: str) -> float | None:
        """Share of the tool calls (operations and `stop`) that went to `name`."""
        total = sum(self.counts.values())
        return self.counts.get(name, 0) / total if total else None

    def as_vector(self) -> torch.Tensor:
        values = [self.num_episodes, self.num_stopped, self.num_accepted, self.reward_sum]
        return torch.tensor(values + [self.counts.get(name, 0) for name in self.action_names], dtype=torch.float64)

    @classmethod
    def from_vector(cls, vector: torch.Tensor, action_names: list[str]) -> "InstructorStatistics":
        statistics = cls(action_names)
        values = vector.tolist()
        statistics.num_episodes, statistics.num_stopped, statistics.num_accepted = (int(v) for v in values[:3])
        statistics.reward_sum = values[3]
        statistics.counts = {name: int(count) for name, count in zip(action_names, values[4:], strict=True)}
        return statistics

    def state_dict(self) -> dict:
        return {
            "num_episodes": self.num_episodes,
            "num_stopped": self.num_stopped,
            "num_accepted": self.num_accepted,
            "reward_sum": self.reward_sum,
            "counts": dict(self.counts),
        }

    def load_state_dict(self, state: dict) -> None:
        self.num_episodes = state["num_episodes"]
        self.num_stopped = state["num_stopped"]
        self.num_accepted = state["num_accepted"]
        self.reward_sum = state["reward_sum"]
        self.counts = {**dict.fromkeys(self.action_names, 0), **state["counts"]}
