"""
Rollout collection: run a batch of episodes with a policy and keep every transition.

No Trainer import here. `collect_rollouts` plays the role of CleanRL's rollout loop; `RolloutBatch` holds what PPO
needs, padded per episode for GAE and flattened per transition for the minibatches.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..environment import STOP_ACTION, Evolution, InstructionEnv, StepResult
from .advantages import compute_episode_gae


# act_fn(states) -> (actions, logprobs, values), each a 1-D tensor over the states
ActFn = Callable[[list[str]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
# reward_fn(step_result) -> (total reward per item, {reward function name: per-item rewards})
RewardFn = Callable[[StepResult], tuple[torch.Tensor, dict[str, torch.Tensor]]]


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

    def _padded(self, flat: torch.Tensor) -> torch.Tensor:
        """(num_transitions,) -> (num_episodes, max_steps), zeros where an episode had already ended."""
        episode_ids, step_ids = torch.tensor(self.episode_ids), torch.tensor(self.step_ids)
        padded = flat.new_zeros(self.num_episodes, int(step_ids.max()) + 1)
        padded[episode_ids, step_ids] = flat
        return padded

    def to_dict(self, gamma: float, gae_lambda: float, normalize_advantage: bool = True) -> dict:
        """
        Flattens the rollout into PPO's training tensors (one row per transition) with GAE advantages and returns.
        Episodes are terminal at their last transition: nothing is bootstrapped past it.
        """
        rewards, values = torch.cat(self.rewards), torch.cat(self.values)
        mask = self._padded(torch.ones_like(rewards))
        advantages, returns = compute_episode_gae(
            self._padded(rewards), self._padded(values), mask, gamma=gamma, gae_lambda=gae_lambda
        )
        episode_ids, step_ids = torch.tensor(self.episode_ids), torch.tensor(self.step_ids)
        advantages, returns = advantages[episode_ids, step_ids], returns[episode_ids, step_ids]
        if normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return {
            "states": list(self.states),
            "actions": torch.cat(self.actions),
            "old_logprobs": torch.cat(self.logprobs),
            "old_values": values,
            "advantages": advantages,
            "returns": returns,
        }

    def summary(self) -> dict[str, float]:
        """Plain statistics of the rollout: rewards, acceptance, queries and operation mix."""
        rewards = torch.cat(self.rewards) if self.rewards else torch.zeros(0)
        episode_returns = torch.zeros(self.num_episodes).index_add_(0, torch.tensor(self.episode_ids), rewards)
        num_rewrites = sum(operation != STOP_ACTION for operation in self.operations)
        num_accepted, num_queries = sum(self.accepted), sum(self.queries)
        counts = Counter(self.operations)
        stats = {
            "num_episodes": float(self.num_episodes),
            "num_transitions": float(len(self)),
            "episode_reward": episode_returns.mean().item(),
            "episode_length": len(self) / max(self.num_episodes, 1),
            "num_accepted": float(num_accepted),
            "num_queries": float(num_queries),
            "accepted_rate": num_accepted / num_rewrites if num_rewrites else 0.0,
            "queries_per_accepted": num_queries / num_accepted if num_accepted else float("inf"),
        }
        stats.update({f"frequency/{name}": counts[name] / max(len(self), 1) for name in counts})
        return stats


def collect_rollouts(env: InstructionEnv, act_fn: ActFn, seeds: list[str], reward_fn: RewardFn) -> RolloutBatch:
    """
    Plays one episode per seed until all have ended and returns every transition.
    """
    batch = RolloutBatch(num_episodes=len(seeds))
    states = env.reset(seeds)
    step = 0
    while states:
        actions, logprobs, values = act_fn(states)
        result = env.step(actions.tolist())
        rewards, components = reward_fn(result)
        batch.add(states, step, result, actions, logprobs, values, rewards, components)
        states = env.states()
        step += 1
    batch.evolutions = [list(episode.accepted) for episode in env.episodes]
    return batch


def uniform_act_fn(num_actions: int, generator: torch.Generator | None = None, allow_stop: bool = False) -> ActFn:
    """
    The Evol-Instruct baseline: every operation with equal probability, whatever the state. The `stop` action (the
    last one) is excluded unless `allow_stop`, as Evol-Instruct always applies its rounds.
    """
    choices = num_actions if allow_stop else num_actions - 1

    def act(states: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        actions = torch.randint(choices, (len(states),), generator=generator)
        logprobs = torch.full((len(states),), -torch.log(torch.tensor(float(choices))).item())
        return actions, logprobs, torch.zeros(len(states))

    return act


@dataclass
class QueryEfficiency:
    r"""
    What a policy produced from a fixed query budget.

    Parameters:
        num_queries (`int`): queries spent (at most the budget, plus the last batch's overshoot).
        num_accepted (`int`): evolved instructions that passed the reviewer and the elimination rules.
        num_episodes (`int`): episodes played.
        mean_episode_reward (`float`): mean total reward of an episode.
        accepted_rate (`float`): accepted instructions per rewrite query.
    """

    num_queries: int
    num_accepted: int
    num_episodes: int
    mean_episode_reward: float
    accepted_rate: float

    @property
    def queries_per_accepted(self) -> float:
        return self.num_queries / self.num_accepted if self.num_accepted else float("inf")


def measure_query_efficiency(
    env: InstructionEnv,
    act_fn: ActFn,
    seeds: list[str],
    reward_fn: RewardFn,
    query_budget: int,
    batch_size: int = 32,
) -> QueryEfficiency:
    """
    Plays episodes over `seeds` (cycling through them) in batches of `batch_size` until `query_budget` queries are
    spent, and reports how many accepted instructions they bought. Every batch is played to its end, so the spend
    can pass the budget by at most one batch's queries; both figures are reported.
    """
    if query_budget <= 0:
        raise ValueError(f"`query_budget` must be a positive number of queries, got {query_budget}.")
    if not seeds:
        raise ValueError("`seeds` is empty: pass at least one seed instruction.")
    num_queries = num_accepted = num_episodes = num_rewrites = 0
    reward_sum, position = 0.0, 0
    while num_queries < query_budget:
        batch = [seeds[(position + i) % len(seeds)] for i in range(batch_size)]
        position += batch_size
        rollout = collect_rollouts(env, act_fn, batch, reward_fn)
        num_queries += sum(rollout.queries)
        num_accepted += sum(rollout.accepted)
        num_episodes += rollout.num_episodes
        num_rewrites += sum(operation != STOP_ACTION for operation in rollout.operations)
        reward_sum += torch.cat(rollout.rewards).sum().item()
    return QueryEfficiency(
        num_queries=num_queries,
        num_accepted=num_accepted,
        num_episodes=num_episodes,
        mean_episode_reward=reward_sum / num_episodes,
        accepted_rate=num_accepted / num_rewrites if num_rewrites else 0.0,
    )
