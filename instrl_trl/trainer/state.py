"""
What must survive a resume beyond the Trainer's own state, in one object: the PPO micro-step and rollout buffer, the
rollout RNG, the query counts, the run statistics, the Lagrange multiplier and the reward functions' memories. Saved
per rank (each rank has its own buffer and RNG); with it a resumed run is bitwise the uninterrupted one, even from a
checkpoint in the middle of a rollout's PPO epochs.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..backends.accounting import QueryAccounting
from ..backends.review_statistics import ReviewStatistics
from ..backends.run_statistics import RunStatistics
from .rollout_buffer import RolloutBuffer


EXTRA_STATE_FILE = "instruction_generation_state_rank{rank}.pt"


@dataclass
class InstructionGenerationState:
    r"""
    The [`InstructionGenerationTrainer`]'s resumable state (GRPO saves its entropy controller the same way).

    Parameters:
        accounting ([`QueryAccounting`]): this rank's LLM query counts (the environment records into it).
        statistics ([`RunStatistics`]): totals since the start of training, over all ranks.
        rollout_generator (`torch.Generator`): draws this rank's minibatch order (a rollout's episodes sample from
            their own streams, seeded by the micro-step: `episode_generators`).
        reward_funcs (`dict[str, Callable]`): reward functions by name; those with a `state_dict` are saved.
        step (`int`): micro-steps done; its position in the rollout cycle says when to collect again.
        buffer ([`RolloutBuffer`] or `None`): the current rollout as PPO trains on it.
        buffered_inputs (`list[dict]` or `None`): the buffer split into this PPO epoch's minibatches.
        cost_multiplier (`float`): Lagrange multiplier of the query cost.
        usage_totals (`dict[str, dict[str, float]]`): per-role usage over all ranks, as last reduced.
        reviewer_statistics ([`ReviewStatistics`] or `None`): this rank's LLM reviewer's sums (the reviewer's own
            object, restored in place); `None` for a reviewer without probabilities (the rules engine).
        review_totals ([`ReviewStatistics`] or `None`): the reviewer's sums over all ranks, as last reduced.
    """

    accounting: QueryAccounting
    statistics: RunStatistics
    rollout_generator: torch.Generator
    reward_funcs: dict[str, Callable] = field(default_factory=dict)
    step: int = 0
    buffer: RolloutBuffer | None = None
    buffered_inputs: list[dict] | None = None
    cost_multiplier: float = 0.0
    usage_totals: dict[str, dict[str, float]] = field(default_factory=dict)
    reviewer_statistics: ReviewStatistics | None = None
    review_totals: ReviewStatistics | None = None

    def update_cost_multiplier(self, totals: RunStatistics, cost_target: float, learning_rate: float) -> None:
        """Dual ascent on the Lagrange multiplier of "LLM queries per accepted evolution <= cost_target"."""
        if totals.num_accepted:
            violation = totals.costs().queries_per_evolution - cost_target
            self.cost_multiplier = max(0.0, self.cost_multiplier + learning_rate * violation)

    @contextmanager
    def reward_memories_kept(self) -> Iterator[None]:
        """Episodes played inside the block (measurements, not training) leave the reward memories as they were."""
        saved = {name: func.state_dict() for name, func in self.reward_funcs.items() if hasattr(func, "state_dict")}
        try:
            yield
        finally:
            for name, state in saved.items():
                self.reward_funcs[name].load_state_dict(state)

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "buffer": None if self.buffer is None else self.buffer.state_dict(),
            "buffered_inputs": self.buffered_inputs,
            "cost_multiplier": self.cost_multiplier,
            "accounting": self.accounting.state_dict(),
            "rollout_generator": self.rollout_generator.get_state(),
            "reward_states": {
                name: func.state_dict() for name, func in self.reward_funcs.items() if hasattr(func, "state_dict")
            },
            "statistics": self.statistics.state_dict(),
            "usage_totals": self.usage_totals,
            "reviewer_statistics": None if self.reviewer_statistics is None else self.reviewer_statistics.state_dict(),
            "review_totals": None if self.review_totals is None else self.review_totals.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.buffer = None if state["buffer"] is None else RolloutBuffer.from_state_dict(state["buffer"])
        self.buffered_inputs = state["buffered_inputs"]
        self.cost_multiplier = state["cost_multiplier"]
        self.accounting.load_state_dict(state["accounting"])
        self.rollout_generator.set_state(state["rollout_generator"])
        self.statistics.load_state_dict(state["statistics"])
        self.usage_totals = state["usage_totals"]
        # Checkpoints from before the reviewer's statistics were kept have neither key
        if self.reviewer_statistics is not None and state.get("reviewer_statistics") is not None:
            self.reviewer_statistics.load_state_dict(state["reviewer_statistics"])
        if state.get("review_totals") is not None:
            self.review_totals = ReviewStatistics.from_dict(state["review_totals"])
        for name, func in self.reward_funcs.items():
            if name in state["reward_states"]:
                func.load_state_dict(state["reward_states"][name])
