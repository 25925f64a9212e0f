"""
`policy: bandit`: an online bandit over operations ([`~instrl_trl.policies.bandit.OperationBandit`]) that learns from
the reviewer's verdicts during generation itself, with no training stage.

Rows must not depend on the servers' timing, so the bandit learns only from whole rounds: a batch's episodes advance
one operation round at a time (the batch-by-batch stage; a bandit is never pipelined), and after each round the
verdicts update the bandit in episode (seed) order before the next round chooses. The choice for a seed thus depends
only on the run seed, the verdicts of the earlier batches and rounds, and its own sampling stream (seeded by the run
seed and its seed index), whatever order the queries of a round returned in.

The bandit's counts ([`BanditPolicy.state_dict`]) after each batch are committed with the batch's seeds (see
[`~instrl_trl.generation.shards.ShardWriter`]), and a resumed run starts from those of the last commit: a run killed
and rerun with the same command writes the rows of an uninterrupted one. (A seed whose queries failed is played again
by the next run, and the bandit learns from its verdicts twice; such a run differs from one where nothing failed.)
"""

import random

import torch

from ..environment import STOP_ACTION, StepResult
from ..operations import OperationLibrary
from ..policies.bandit import OperationBandit
from .evolution_setup import EvolutionSetup, EvolvedBatch, GenerationPolicy
from .evolve import evolve_seeds


class BanditPolicy(GenerationPolicy):
    r"""
    Chooses operations by Thompson sampling per instruction family, learning as it generates (module docstring).

    Args:
        operations ([`OperationLibrary`]):
            The operations it may choose.
        use_features (`bool`, *optional*, defaults to `True`):
            One table per family (question or task); `False` for the feature-blind bandit (`bandit:blind`).
        stop_below (`float`, *optional*, defaults to `0.3`):
            See [`~instrl_trl.policies.bandit.OperationBandit`].
    """

    kind = "bandit"

    def __init__(self, operations: OperationLibrary, use_features: bool = True, stop_below: float = 0.3):
        self.operations = operations
        self.bandit = OperationBandit(operations.names, use_features=use_features, stop_below=stop_below)
        self._env = None

    def evolve(self, setup: EvolutionSetup, seeds: list[str], seed_indices: list[int]) -> EvolvedBatch:
        if self._env is None or self._env[0] is not setup:
            self._env = (setup, setup.environment(self.operations))
        env = self._env[1]
        streams = [random.Random(f"{setup.seed}:{index}") for index in seed_indices]
        action_ids = {name: index for index, name in enumerate(env.action_names)}

        def act(states: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            # `states` are those of `env.running`, in that order
            choices = [
                self.bandit.choose(env.episodes[i].instruction, env.episodes[i].history, streams[i])
                for i in env.running
            ]
            ids = torch.tensor([action_ids[name] for name in choices])
            return ids, torch.zeros(len(ids)), torch.zeros(len(ids))

        candidates = evolve_seeds(env, act, seeds, seed_indices, setup.score, setup.keep_intermediate, self.learn)
        failed = {seed_indices[i] for i, episode in enumerate(env.episodes) if episode.failed_queries}
        return EvolvedBatch(candidates, failed)

    def learn(self, result: StepResult) -> None:
        """Updates the bandit from one round's verdicts, in episode order; a failed review teaches nothing."""
        for k, operation in enumerate(result.operation):
            if operation != STOP_ACTION and not result.review_failed[k]:
                self.bandit.update(result.instructions[k], operation, result.accepted[k])

    def state_dict(self) -> dict:
        return self.bandit.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.bandit.load_state_dict(state)
