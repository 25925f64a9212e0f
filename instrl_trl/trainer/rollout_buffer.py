"""
The rollout buffer: one rollout as PPO trains on it (SB3's `RolloutBuffer`, CleanRL's `b_*` tensors), with its
advantages and returns computed once, then reshuffled into minibatches for each PPO epoch. Pure tensors, no Trainer.
"""

from dataclasses import asdict, dataclass

import torch

from .advantages import compute_episode_gae, explained_variance, normalize_advantages
from .rollout import RolloutBatch


@dataclass
class RolloutBuffer:
    r"""
    Every transition of one rollout, one row per transition, in the order they happened.

    Parameters:
        states (`list[str]`): the policy's input before each transition.
        actions (`torch.LongTensor`), old_logprobs, old_values, rewards (`torch.Tensor`): as collected.
        advantages, returns (`torch.Tensor`): GAE over each episode (advantages normalized when asked).
        explained_variance (`float`): how much of the returns' variance the rollout's values explain (NaN for
            constant returns), logged once per rollout as CleanRL and SB3 do.
    """

    states: list[str]
    actions: torch.Tensor
    old_logprobs: torch.Tensor
    old_values: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    explained_variance: float

    @classmethod
    def from_rollout(
        cls, rollout: RolloutBatch, gamma: float, gae_lambda: float, normalize_advantage: bool = True
    ) -> "RolloutBuffer":
        """Flattens `rollout` and computes the advantages and returns of its episodes (ragged lengths padded)."""
        flat = rollout.to_dict()
        advantages, returns = compute_episode_gae(
            rollout.pad(flat["rewards"]),
            rollout.pad(flat["old_values"]),
            mask=rollout.pad(torch.ones_like(flat["rewards"])),
            gamma=gamma,
            gae_lambda=gae_lambda,
        )
        advantages, returns = rollout.unpad(advantages), rollout.unpad(returns)
        if normalize_advantage:
            advantages = normalize_advantages(advantages)
        # Of the values the rollout was collected with, before any update
        variance_explained = explained_variance(flat["old_values"], returns).item()
        return cls(**flat, advantages=advantages, returns=returns, explained_variance=variance_explained)

    def __len__(self) -> int:
        return len(self.states)

    def rows(self, indices: torch.Tensor) -> dict:
        """The training inputs of the transitions `indices` (one minibatch), as `compute_loss` reads them."""
        picked = indices.tolist()
        return {
            "states": [self.states[i] for i in picked],
            **{name: getattr(self, name)[indices] for name in ("actions", "old_logprobs", "old_values", "returns")},
            "advantages": self.advantages[indices],
        }

    def minibatches(self, num_minibatches: int, generator: torch.Generator) -> list[dict]:
        """One PPO epoch: the transitions reshuffled and split into `num_minibatches` (ragged-safe) minibatches."""
        order = torch.randperm(len(self), generator=generator)
        return [self.rows(mb_inds) for mb_inds in torch.tensor_split(order, num_minibatches)]

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> "RolloutBuffer":
        return cls(**state)
