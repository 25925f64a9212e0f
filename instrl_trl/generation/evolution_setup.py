"""
The interface every generation policy implements ([`GenerationPolicy.evolve`]) and what it evolves seeds with
([`EvolutionSetup`]): the generation stage and the policy evaluation call nothing else.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..backends.accounting import QueryAccounting
from ..backends.base import Reviewer, Rewriter
from ..environment import InstructionEnv
from ..operations import OperationLibrary
from ..rewards.scoring import weighted_rewards
from .evolve import Candidate


@dataclass
class EvolutionSetup:
    r"""
    What every policy kind evolves seeds with, built once by the generation stage.

    Parameters:
        rewriter ([`Rewriter`]), reviewer ([`Reviewer`]): the roles that apply operations and judge them.
        accounting ([`QueryAccounting`]): where every rewriter and reviewer query is counted.
        reward_funcs (`list[Callable]`), reward_weights (`torch.Tensor`): the step rewards summed into a row's
            `reward`.
        max_operations (`int`): operations per seed.
        seed (`int`): run seed of the rewrites and of sampled operations.
        greedy (`bool`), temperature (`float`): take the most likely operation, or sample at this temperature.
        keep_intermediate (`bool`): keep every accepted instruction of an episode, not only its last one.
    """

    rewriter: Rewriter
    reviewer: Reviewer
    accounting: QueryAccounting
    reward_funcs: list[Callable]
    reward_weights: torch.Tensor
    max_operations: int
    seed: int
    greedy: bool = True
    temperature: float = 1.0
    keep_intermediate: bool = False

    def score(self, result) -> torch.Tensor:
        """The weighted step rewards of an [`~instrl_trl.environment.StepResult`]."""
        return weighted_rewards(self.reward_funcs, self.reward_weights, result.instructions, result.new_instructions,
                                **result.reward_kwargs())[0]  # fmt: skip

    def environment(self, operations: OperationLibrary) -> InstructionEnv:
        return InstructionEnv(operations, self.rewriter, self.reviewer, self.max_operations,
                              accounting=self.accounting, seed=self.seed)  # fmt: skip


@dataclass
class EvolvedBatch:
    r"""
    What a policy made of a batch of seeds.

    Parameters:
        candidates (`list[Candidate]`): the accepted instructions, in seed order.
        failed_seed_indices (`set[int]`): seeds whose episode had a query that got no answer (after the backend's
            retries); the stage does not count them as done.
    """

    candidates: list[Candidate]
    failed_seed_indices: set[int]


class GenerationPolicy:
    r"""
    Chooses the operations for batches of seeds. `kind` is one of [`POLICY_KINDS`]; `operations` are the operations it
    may choose. Subclasses implement `evolve`.
    """

    kind: str
    operations: OperationLibrary

    def evolve(self, setup: EvolutionSetup, seeds: list[str], seed_indices: list[int]) -> EvolvedBatch:
        """
        Plays one episode per seed and returns the accepted instructions as [`Candidate`]s, in seed order, with the
        seeds whose queries failed. Sampling is seeded by `setup.seed + seed_indices[0]`, so that a resumed run
        samples as an uninterrupted one.
        """
        raise NotImplementedError

    def state_dict(self) -> dict | None:
        """
        What the policy learned while generating, JSON-serialisable, committed with the seeds it has seen so that a
        resumed run goes on from it (see [`~instrl_trl.generation.shards.ShardWriter`]); `None` (the default) for a
        policy that does not learn as it generates.
        """
        return None

    def load_state_dict(self, state: dict) -> None:
        """Restores what [`GenerationPolicy.state_dict`] returned."""
        raise ValueError(
            f"A {self.kind!r} policy has no state to restore, but the run folder's progress holds one: it was written "
            "by a policy that learns as it generates. Rerun with that policy, or set a new `output_dir`."
        )
