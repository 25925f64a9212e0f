"""
One evaluation for every operation policy: the loop plays a policy through the one interface every kind implements
([`~instrl_trl.generation.policies.GenerationPolicy.evolve`]: the PPO policy, the instructor, the baselines, the
bandit), with the generation's own roles and query accounting, and sums up what its queries and tokens bought in a
[`PolicyEvaluation`] (the ratios of [`~instrl_trl.backends.costs.CostSummary`]).

Two modes, one loop:

- **one episode per seed** (`query_budget=None`): every seed once, in order, in batches of `batch_size`;
- **a fixed query budget** (`query_budget=N`): the seeds again and again, in batches, until `N` queries are spent (a
  batch is always played to its end, so the spend may pass `N` by one batch's queries; both are reported). Each pass
  plays the seeds under new seed indices, so a sampling policy draws afresh. A pass that spends nothing (a policy
  that stops at once) ends the measure.

Every policy plays under the same rule: an eliminated rewrite ends its episode, `max_operations` caps it, `stop` ends
it for free. An episode that made at least one evolution keeps one instruction, its last.
"""

import dataclasses
import math
from dataclasses import dataclass

import torch

from ..backends.accounting import ROLES, QueryAccounting, RoleUsage
from ..backends.base import Reviewer, Rewriter
from ..backends.costs import MIN_EVOLUTIONS, CostSummary
from ..embeddings import SentenceEmbedder
from ..policy import eval_mode
from ..rewards import get_reward_funcs
from ..rewards.diversity import NoveltyReward
from .evolve import Candidate
from .policies import EvolutionSetup, GenerationPolicy, PPOPolicy, baseline_policy


@dataclass(frozen=True)
class PolicyEvaluation:
    r"""
    What a policy's episodes spent and made, in one of the two modes of [`evaluate_policy`].

    Parameters:
        num_episodes (`int`):
            Episodes played.
        costs ([`~instrl_trl.backends.costs.CostSummary`]):
            Queries, tokens per role, evolutions, kept and deep instructions, and the ratios between them.
        usage (`dict[str, RoleUsage]`):
            Everything counted per role (queries, tokens, failures), as in `queries.json`.
        num_sequences (`int`):
            Distinct operation sequences among the kept instructions (the operations tried up to each, including
            those that added nothing).
        mean_novelty (`float`):
            Mean novelty of the kept instructions in seed order ([`mean_novelty`]); `NaN` without an embedder or
            without kept instructions.
        num_failed_episodes (`int`):
            Episodes with a query that got no answer (after the backend's retries).
        query_budget (`int` or `None`):
            The budget of the mode that measured it; `None` for one episode per seed.
    """

    num_episodes: int
    costs: CostSummary
    usage: dict[str, RoleUsage]
    num_sequences: int
    mean_novelty: float
    num_failed_episodes: int = 0
    query_budget: int | None = None


def mean_novelty(instructions: list[str], embedder: SentenceEmbedder | None) -> float:
    """
    Mean [`~instrl_trl.rewards.NoveltyReward`] of `instructions` taken in order (each against all those before it,
    the first scores 1.0): the project's dataset diversity. `NaN` without an embedder or without instructions.
    """
    if embedder is None or not instructions:
        return math.nan
    novelty = NoveltyReward(embedder, max_memory=len(instructions))
    rewards = novelty(instructions, instructions, accepted=[True] * len(instructions))
    return sum(rewards) / len(rewards)


def evaluation_setup(
    rewriter: Rewriter,
    reviewer: Reviewer,
    max_operations: int,
    seed: int,
    greedy: bool = True,
    temperature: float = 1.0,
) -> EvolutionSetup:
    """
    The [`EvolutionSetup`] every policy of one comparison shares: the roles, `max_operations` and the run seed, a
    fresh query accounting, and every accepted instruction kept (the evaluation counts each evolution). The rewards
    only fill the candidates' `reward` (the information gain): the evaluation measures costs, not rewards.
    """
    return EvolutionSetup(
        rewriter, reviewer, QueryAccounting(), get_reward_funcs(["information_gain"]), torch.ones(1),
        max_operations, seed, greedy=greedy, temperature=temperature, keep_intermediate=True,
    )  # fmt: skip


def evaluate_policy(
    policy: GenerationPolicy,
    setup: EvolutionSetup,
    seeds: list[str],
    query_budget: int | None = None,
    batch_size: int = 32,
    min_evolutions: int = MIN_EVOLUTIONS,
    embedder: SentenceEmbedder | None = None,
) -> PolicyEvaluation:
    r"""
    Plays `policy` on `seeds` (one episode per seed, or until `query_budget` queries are spent) and sums up what it
    spent and made.

    Args:
        policy ([`GenerationPolicy`]):
            Any kind ([`~instrl_trl.generation.policies.load_generation_policy`]).
        setup ([`EvolutionSetup`]):
            Roles, `max_operations`, run seed and greedy or sampled choices; pass the same roles to every policy
            compared ([`evaluation_setup`]). Its accounting is not touched: each evaluation counts on a copy of the
            setup with a fresh one, which keeps every accepted instruction.
        seeds (`list[str]`):
            Seed instructions.
        query_budget (`int` or `None`, *optional*, defaults to `None`):
            `None`: one episode per seed. A number: the fixed-budget mode.
        batch_size (`int`, *optional*, defaults to `32`):
            Seeds per `evolve` call.
        min_evolutions (`int`, *optional*, defaults to `3`):
            Evolutions a kept instruction needs to count as deep.
        embedder ([`~instrl_trl.embeddings.SentenceEmbedder`] or `None`, *optional*, defaults to `None`):
            Embeds the kept instructions for their mean novelty; `None` skips it (`NaN`).

    Returns:
        [`PolicyEvaluation`]
    """
    if not seeds:
        raise ValueError("`seeds` is empty: pass at least one seed instruction.")
    if query_budget is not None and query_budget <= 0:
        raise ValueError(f"`query_budget` must be a positive number of queries or None, got {query_budget}.")
    if min_evolutions < 1:
        raise ValueError(f"`min_evolutions` must be at least 1, got {min_evolutions}.")
    setup = dataclasses.replace(setup, accounting=QueryAccounting(), keep_intermediate=True)
    episodes: dict[int, list[Candidate]] = {}  # seed index -> its evolutions, in order
    num_failed = position = 0
    while True:
        # One pass over the seeds, under fresh seed indices
        queries_before = setup.accounting.total
        for start in range(0, len(seeds), batch_size):
            batch = seeds[start : start + batch_size]
            indices = list(range(position + start, position + start + len(batch)))
            evolved = policy.evolve(setup, batch, indices)
            episodes.update((index, []) for index in indices)
            for candidate in evolved.candidates:
                episodes[candidate.seed_index].append(candidate)
            num_failed += len(evolved.failed_seed_indices)
            if query_budget is not None and setup.accounting.total >= query_budget:
                break
        position += len(seeds)
        spent_nothing = setup.accounting.total == queries_before
        if query_budget is None or setup.accounting.total >= query_budget or spent_nothing:
            break
    return summarize(episodes, setup.accounting, min_evolutions, embedder, num_failed, query_budget)


def summarize(
    episodes: dict[int, list[Candidate]],
    accounting: QueryAccounting,
    min_evolutions: int = MIN_EVOLUTIONS,
    embedder: SentenceEmbedder | None = None,
    num_failed_episodes: int = 0,
    query_budget: int | None = None,
) -> PolicyEvaluation:
    """
    The [`PolicyEvaluation`] of played episodes: `episodes` maps each episode (by seed index) to its accepted
    instructions in order (all of them, as `keep_intermediate` gives), `accounting` holds what they spent.
    """
    kept = [evolutions[-1] for _, evolutions in sorted(episodes.items()) if evolutions]
    usage = {role: dataclasses.replace(accounting.usage(role)) for role in ROLES}
    costs = CostSummary(
        num_queries=accounting.total,
        num_evolutions=sum(len(evolutions) for evolutions in episodes.values()),
        num_instructions=len(kept),
        num_deep_instructions=sum(candidate.evolutions >= min_evolutions for candidate in kept),
        min_evolutions=min_evolutions,
        num_rewrites=accounting["rewriter"],
        prompt_tokens={role: usage[role].prompt_tokens for role in ROLES},
        completion_tokens={role: usage[role].completion_tokens for role in ROLES},
    )
    return PolicyEvaluation(
        num_episodes=len(episodes),
        costs=costs,
        usage=usage,
        num_sequences=len({candidate.operations for candidate in kept}),
        mean_novelty=mean_novelty([candidate.instruction for candidate in kept], embedder),
        num_failed_episodes=num_failed_episodes,
        query_budget=query_budget,
    )


def trainer_policy(trainer) -> PPOPolicy:
    """
    The policy an [`~instrl_trl.InstructionGenerationTrainer`] is training, as a generation policy that reads states
    as training does: [`evaluate_policy`] measures it as any other. Its sampling draws from streams of its own, so
    that measuring leaves training's generator as it was.
    """
    model = trainer.accelerator.unwrap_model(trainer.model)
    return PPOPolicy(model, trainer.processing_class, trainer.operations, max_length=trainer.args.max_state_length)


def evaluate_trainer_policy(
    trainer,
    seeds: list[str],
    policy: str = "trained",
    query_budget: int | None = None,
    greedy: bool = True,
    batch_size: int = 32,
    min_evolutions: int = MIN_EVOLUTIONS,
) -> PolicyEvaluation:
    """
    [`evaluate_policy`] for the policy of an [`~instrl_trl.InstructionGenerationTrainer`] (`policy="trained"`) or a
    baseline of its operations (`"uniform"`, `"no_repeat"`, `"sequence:a,b"`, `"bandit"`), on the trainer's rewriter,
    reviewer, `max_operations` and seed, with a query count of its own (training's is untouched).
    """
    env = trainer.env
    setup = evaluation_setup(env.rewriter, env.reviewer, env.max_operations, trainer.args.seed, greedy=greedy,
                             temperature=trainer.args.rollout_temperature)  # fmt: skip
    played = trainer_policy(trainer) if policy == "trained" else baseline_policy(policy, trainer.operations)
    with eval_mode(trainer.accelerator.unwrap_model(trainer.model)):
        return evaluate_policy(played, setup, seeds, query_budget, batch_size, min_evolutions)
