import pytest
import torch

from instrl_trl.trainer.rollout import collect_rollouts, episode_generators


def draws(generators: list[torch.Generator]) -> list[list[int]]:
    return [torch.randint(0, 2**30, (4,), generator=generator).tolist() for generator in generators]


def test_episode_generators_are_reproducible_and_distinct():
    reference = draws(episode_generators(seed=7, rollout=3, num_episodes=4, rank=1))
    assert draws(episode_generators(seed=7, rollout=3, num_episodes=4, rank=1)) == reference
    # every episode, rollout, rank and run seed has a stream of its own
    assert len({tuple(stream) for stream in reference}) == 4
    for other in ({"seed": 8}, {"rollout": 4}, {"rank": 0}):
        settings = {"seed": 7, "rollout": 3, "num_episodes": 4, "rank": 1, **other}
        assert all(a != b for a, b in zip(draws(episode_generators(**settings)), reference, strict=True)), other
    # episode i's stream does not depend on how many episodes the rollout has
    assert draws(episode_generators(seed=7, rollout=3, num_episodes=2, rank=1)) == reference[:2]


def test_collect_rollouts_wants_one_generator_per_episode():
    with pytest.raises(ValueError, match="one per episode"):
        collect_rollouts(env=None, act_fn=None, seeds=["a", "b"], reward_fn=None, generators=[torch.Generator()])
