"""Evolving seeds with a trained policy: one episode per seed, keeping the accepted instructions."""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..constraints import Constraint
from ..environment import Evolution, InstructionEnv, StepResult


@dataclass(frozen=True)
class Candidate:
    r"""
    An evolved instruction before filtering and answering.

    Parameters:
        instruction (`str`): the evolved instruction.
        seed (`str`), seed_index (`int`): the seed it came from and its index in the seed dataset.
        operations (`tuple[str, ...]`): the operations tried on the seed to reach it, in order (including those
            the reviewer rejected): their number is its `depth`.
        evolutions (`int`): how many accepted evolutions made it (1 for an episode's first accepted instruction).
        reward (`float`): weighted reward of its episode up to and including the step that produced it.
        constraints (`tuple[Constraint, ...]`): verifiable constraints it carries.
        review_probability (`float` or `None`): the reviewer's P(information gain) for the step that made it
            (`None` for a reviewer that gives none, as the rules engine).
    """

    instruction: str
    seed: str
    seed_index: int
    operations: tuple[str, ...]
    evolutions: int
    reward: float
    constraints: tuple[Constraint, ...]
    review_probability: float | None = None

    @property
    def depth(self) -> int:
        """Number of operations tried on the seed to reach it (accepted or not); see `evolutions` for the accepted."""
        return len(self.operations)


def evolve_seeds(
    env: InstructionEnv,
    act_fn: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    seeds: list[str],
    seed_indices: list[int],
    score_fn: Callable,
    keep_intermediate: bool = False,
    on_step: Callable[[StepResult], None] | None = None,
) -> list[Candidate]:
    """
    Plays one episode per seed and returns its accepted instructions (all of them with `keep_intermediate`, else
    the last one), in seed order. `score_fn(step_result) -> rewards` gives each step's reward; `on_step(step_result)`,
    when given, sees every step once all its episodes' queries returned (a policy that learns online).

    Input columns: `seeds` (instructions). Output: [`Candidate`]s (`instruction`, `seed`, `seed_index`,
    `operations`, `depth`, `evolutions`, `reward`, `constraints`, `review_probability`).
    """
    states = env.reset(seeds)
    returns = [0.0] * len(seeds)
    rewards_at_acceptance: list[list[float]] = [[] for _ in seeds]
    while states:
        actions, _, _ = act_fn(states)
        result = env.step(actions.tolist())
        if on_step is not None:
            on_step(result)
        rewards = score_fn(result).tolist()
        for position, episode_index in enumerate(result.episode_indices):
            returns[episode_index] += rewards[position]
            if result.accepted[position]:
                rewards_at_acceptance[episode_index].append(returns[episode_index])
        states = env.states()

    candidates = []
    for episode_index, episode in enumerate(env.episodes):
        returns_at_acceptance = rewards_at_acceptance[episode_index]
        candidates.extend(episode_candidates(episode.seed, seed_indices[episode_index], episode.accepted,
                                             returns_at_acceptance, keep_intermediate))  # fmt: skip
    return candidates


def episode_candidates(
    seed: str,
    seed_index: int,
    accepted: list[Evolution],
    returns_at_acceptance: list[float],
    keep_intermediate: bool,
) -> list[Candidate]:
    """
    The [`Candidate`]s of one episode: its `accepted` evolutions (all of them with `keep_intermediate`, else the last
    one), each with the episode's return up to and including the step that made it (`returns_at_acceptance`, one per
    accepted evolution).
    """
    evolutions = list(zip(accepted, returns_at_acceptance, strict=True))
    if not keep_intermediate:
        evolutions = evolutions[-1:]
    return [
        Candidate(
            instruction=evolution.instruction,
            seed=seed,
            seed_index=seed_index,
            operations=evolution.operations,
            evolutions=evolution.evolutions,
            reward=reward,
            constraints=evolution.constraints,
            review_probability=evolution.review_probability,
        )
        for evolution, reward in evolutions
    ]
