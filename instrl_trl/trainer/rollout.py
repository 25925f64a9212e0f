"""
Rollout collection: run a batch of episodes with a policy and keep every transition.

No Trainer import here. `collect_rollouts` plays the role of CleanRL's rollout loop, in lock-step (one policy forward
over every running episode, then one environment step that waits for all of them);
[`~instrl_trl.trainer.pipelined_rollout.collect_rollouts_pipelined`] plays the same episodes as their queries return,
and gives the same [`RolloutBatch`]. `RolloutBatch` holds what PPO needs, flattened per transition for the minibatches
and padded per episode (`pad`/`unpad`) for GAE.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..backends.server_load import ClientLoad, ServerLoad, least_fill, least_full
from ..environment import Evolution, InstructionEnv, StepResult


# reward_fn(step_result) -> (total reward per item, {reward function name: per-item rewards})
RewardFn = Callable[[StepResult], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class EpisodeActFn(Protocol):
    """
    The rollout's policy ([`~instrl_trl.policy.act`] bound to a model): `(actions, logprobs, values)` for `states`,
    each a 1-D tensor on CPU. With `generator` (one per state), state `i`'s action is sampled from `generator[i]`;
    with `actions`, those are scored instead. Both paths take the same forward pass, so scoring the actions a forward
    over the same states sampled gives back its log-probabilities and values bit for bit.
    """

    def __call__(
        self,
        states: list[str],
        generator: list[torch.Generator] | None = None,
        actions: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


def episode_generators(seed: int, rollout: int, num_episodes: int, rank: int = 0) -> list[torch.Generator]:
    """
    One sampling stream per episode of a rollout, seeded by the run `seed`, this process's `rank`, the `rollout`
    (e.g. the micro-step that collects it) and the episode's index: an episode's actions then depend neither on the
    other episodes nor on the order in which a pipelined rollout acts on them.
    """
    generators = []
    for index in range(num_episodes):
        # sha256, not hash(): Python salts str hashes per process, and a run must be reproducible across processes
        digest = hashlib.sha256(f"{seed}:{rank}:{rollout}:{index}".encode()).digest()
        generators.append(torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1))
    return generators


@dataclass
class RolloutBatch:
    r"""
    Every transition of one rollout, in the order they happened (step by step, episodes in order within a step).

    Parameters:
        num_episodes (`int`): number of episodes (one per seed).
        states (`list[str]`): the policy state before each transition.
        episode_ids (`torch.LongTensor`), step_ids (`torch.LongTensor`): where each transition sits.
        actions, logprobs, values, rewards (`torch.Tensor`): per transition.
        reward_components (`dict[str, torch.Tensor]`): unweighted output of each reward function, per transition.
        operations (`list[str]`), accepted (`list[bool]`), queries (`list[int]`): from the environment.
        evolutions (`list[list[Evolution]]`): per episode, the instructions that passed review and elimination.
        server_loads (`dict[str, ServerLoad]`): a pipelined rollout's servers, each with how full the rollout kept it
            (see [`~instrl_trl.backends.server_load.ServerLoad`]); empty for lock-step.
        client_load (`ClientLoad` or `None`): what a pipelined rollout's process did until its last answer: its CPU,
            its loop's waiting for answers (see [`~instrl_trl.backends.server_load.ClientLoad`]).
    """

    num_episodes: int
    states: list[str] = field(default_factory=list)
    episode_ids: list[int] = field(default_factory=list)
    step_ids: list[int] = field(default_factory=list)
    actions: list[torch.Tensor] = field(default_factory=list)
    logprobs: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    rewards: list[torch.Tensor] = field(default_factory=list)
    reward_components: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    evolutions: list[list[Evolution]] = field(default_factory=list)
    server_loads: dict[str, ServerLoad] = field(default_factory=dict)
    client_load: ClientLoad | None = None

    def add(self, states, step, result: StepResult, actions, logprobs, values, rewards, components) -> None:
        self.states.extend(states)
        self.episode_ids.extend(result.episode_indices)
        self.step_ids.extend([step] * len(states))
        self.actions.append(actions)
        self.logprobs.append(logprobs)
        self.values.append(values)
        self.rewards.append(rewards)
        for name, value in components.items():
            self.reward_components.setdefault(name, []).append(value)
        self.operations.extend(result.operation)
        self.accepted.extend(result.accepted)
        self.queries.extend(result.queries)

    def __len__(self) -> int:
        return len(self.states)

    @property
    def server_fill(self) -> float | None:
        """
        A pipelined rollout's least full server's fill: its mean requests in flight over its `max_concurrency`, from
        the first request to the last answer; `None` for a lock-step rollout.
        """
        return least_fill(self.server_loads)

    @property
    def server_held_back(self) -> float | None:
        """
        Of the slot-time the least full server left free, the share that passed while the rollout's loop worked (see
        [`~instrl_trl.backends.server_load.ServerLoad.held_back`]); `None` for lock-step or with no slot ever free.
        """
        load = least_full(self.server_loads)
        return None if load is None else load.held_back

    def pad(self, flat: torch.Tensor) -> torch.Tensor:
        """`(num_transitions,)` -> `(num_episodes, max_steps)`, one episode per row, zeros after an episode ended."""
        episode_ids, step_ids = torch.tensor(self.episode_ids), torch.tensor(self.step_ids)
        padded = flat.new_zeros(self.num_episodes, int(step_ids.max()) + 1)
        padded[episode_ids, step_ids] = flat
        return padded

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """The inverse of [`pad`]: `(num_episodes, max_steps)` -> `(num_transitions,)` in transition order."""
        return padded[torch.tensor(self.episode_ids), torch.tensor(self.step_ids)]

    def to_dict(self) -> dict:
        """
        Flattens the rollout into PPO's training tensors, one row per transition (CleanRL's `b_*`): `states`,
        `actions`, `old_logprobs`, `old_values` and `rewards`. Advantages and returns are the caller's to add.
        """
        return {
            "states": list(self.states),
            "actions": torch.cat(self.actions),
            "old_logprobs": torch.cat(self.logprobs),
            "old_values": torch.cat(self.values),
            "rewards": torch.cat(self.rewards),
        }


def collect_rollouts(
    env: InstructionEnv,
    act_fn: EpisodeActFn,
    seeds: list[str],
    reward_fn: RewardFn,
    generators: list[torch.Generator] | torch.Generator,
) -> RolloutBatch:
    """
    Plays one episode per seed until all have ended, in lock-step, and returns every transition. Episode `i` samples
    its actions from `generators[i]` (see [`episode_generators`]), or every step's actions are drawn together from
    one `generator`.
    """
    per_episode = isinstance(generators, list)
    if per_episode and len(generators) != len(seeds):
        raise ValueError(f"Got {len(generators)} generators for {len(seeds)} seeds; pass one per episode.")
    batch = RolloutBatch(num_episodes=len(seeds))
    states = env.reset(seeds)
    step = 0
    while states:
        streams = [generators[i] for i in env.running] if per_episode else generators
        actions, logprobs, values = act_fn(states, generator=streams)
        result = env.step(actions.tolist())
        rewards, components = reward_fn(result)
        batch.add(states, step, result, actions, logprobs, values, rewards, components)
        states = env.states()
        step += 1
    batch.evolutions = [list(episode.accepted) for episode in env.episodes]
    return batch
