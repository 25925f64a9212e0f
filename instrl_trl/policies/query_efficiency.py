"""
Query efficiency under a fixed budget: how many accepted instructions a policy buys with `query_budget` LLM queries.
The paper's measure for comparing a trained policy with Evol-Instruct's uniform baseline.
"""

from dataclasses import dataclass

import torch

from ..environment import STOP_ACTION, InstructionEnv
from ..policy import ActFn, eval_mode
from ..trainer.rollout import RewardFn, collect_rollouts
from ..trainer.run_statistics import queries_per_accepted
from .baselines import build_baseline_policy


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
        return queries_per_accepted(self.num_queries, self.num_accepted)


def measurement_env(env: InstructionEnv, end_on_elimination: bool) -> InstructionEnv:
    """A fresh environment with `env`'s operations, roles and seed, but its own query count (training's is kept)."""
    return InstructionEnv(
        env.operations,
        env.rewriter,
        env.reviewer,
        env.max_operations,
        seed=env.seed,
        end_on_elimination=end_on_elimination,
    )


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
    can pass the budget by at most one batch's queries; both figures are reported. A policy that spends no query on a
    whole pass over the seeds (it stops at once) would never spend the budget: the measure ends there.
    """
    if query_budget <= 0:
        raise ValueError(f"`query_budget` must be a positive number of queries, got {query_budget}.")
    if not seeds:
        raise ValueError("`seeds` is empty: pass at least one seed instruction.")
    num_queries = num_accepted = num_episodes = num_rewrites = 0
    reward_sum, position = 0.0, 0
    episodes_in_pass = queries_in_pass = 0
    while num_queries < query_budget:
        batch = [seeds[(position + i) % len(seeds)] for i in range(batch_size)]
        position += batch_size
        rollout = collect_rollouts(env, act_fn, batch, reward_fn)
        num_queries += sum(rollout.queries)
        num_accepted += sum(rollout.accepted)
        num_episodes += rollout.num_episodes
        num_rewrites += sum(operation != STOP_ACTION for operation in rollout.operations)
        reward_sum += torch.cat(rollout.rewards).sum().item()
        episodes_in_pass += rollout.num_episodes
        queries_in_pass += sum(rollout.queries)
        if episodes_in_pass >= len(seeds):  # a whole pass over the seeds
            if queries_in_pass == 0:
                break  # the policy stops at once on every seed: it would never spend the budget
            episodes_in_pass = queries_in_pass = 0
    return QueryEfficiency(
        num_queries=num_queries,
        num_accepted=num_accepted,
        num_episodes=num_episodes,
        mean_episode_reward=reward_sum / num_episodes,
        accepted_rate=num_accepted / num_rewrites if num_rewrites else 0.0,
    )


def evaluate_trainer_query_efficiency(
    trainer,
    seeds: list[str],
    query_budget: int,
    policy: str = "trained",
    greedy: bool = True,
    batch_size: int = 32,
    end_on_elimination: bool | None = None,
) -> QueryEfficiency:
    """
    Spends `query_budget` queries on `seeds` with the policy of an [`~instrl_trl.InstructionGenerationTrainer`]
    (`policy="trained"`) or a baseline (`"uniform"`: Evol-Instruct's `max_operations` rounds of random operations, a
    failed evolution dropped and its instruction kept; `"no_repeat"`: random operations never repeated within an
    episode, then `stop`; `"sequence:a,b"`: those operations in order), scored by the trainer's rewards, on a separate
    environment with its own query count. Training state (query counts, novelty memory) is untouched.
    `end_on_elimination` overrides the environment's rule (by default only the trained policy's episodes end on
    elimination, as in training).
    """
    if policy == "trained":
        act_fn = trainer.policy_act_fn(greedy=greedy)
    else:
        act_fn = build_baseline_policy(policy, trainer.action_names, seed=trainer.args.seed)
    end_on_elimination = policy == "trained" if end_on_elimination is None else end_on_elimination
    env = measurement_env(trainer.env, end_on_elimination)
    with trainer.run_state.reward_memories_kept(), eval_mode(trainer.accelerator.unwrap_model(trainer.model)):
        return measure_query_efficiency(env, act_fn, seeds, trainer.score_step, query_budget, batch_size)
