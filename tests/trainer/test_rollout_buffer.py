import pytest
import torch

from instrl_trl.trainer.rollout import RolloutBatch
from instrl_trl.trainer.rollout_buffer import RolloutBuffer


def make_rollout() -> RolloutBatch:
    # Two episodes of ragged length: episode 0 has steps 0 and 1, episode 1 only step 0 (transition order: step-major)
    return RolloutBatch(
        num_episodes=2,
        states=["a0", "b0", "a1"],
        episode_ids=[0, 1, 0],
        step_ids=[0, 0, 1],
        actions=[torch.tensor([1, 2]), torch.tensor([3])],
        logprobs=[torch.tensor([-0.1, -0.2]), torch.tensor([-0.3])],
        values=[torch.tensor([0.5, 0.2]), torch.tensor([0.4])],
        rewards=[torch.tensor([1.0, 0.0]), torch.tensor([2.0])],
    )


def test_advantages_and_returns_follow_each_episode():
    gamma, lam = 0.9, 0.8
    buffer = RolloutBuffer.from_rollout(make_rollout(), gamma, lam, normalize_advantage=False)
    # By hand, episode 0: delta1 = 2 - 0.4, delta0 = 1 + 0.9 * 0.4 - 0.5; A1 = delta1, A0 = delta0 + 0.9 * 0.8 * A1
    a1 = 2.0 - 0.4
    a0 = 1.0 + gamma * 0.4 - 0.5 + gamma * lam * a1
    b0 = 0.0 - 0.2  # episode 1 ends after one step
    torch.testing.assert_close(buffer.advantages, torch.tensor([a0, b0, a1]))
    torch.testing.assert_close(buffer.returns, buffer.advantages + torch.tensor([0.5, 0.2, 0.4]))
    assert buffer.states == ["a0", "b0", "a1"]
    normalized = RolloutBuffer.from_rollout(make_rollout(), gamma, lam, normalize_advantage=True)
    assert normalized.advantages.mean().item() == pytest.approx(0.0, abs=1e-6)


def test_each_ppo_epoch_sees_every_transition_once_in_a_new_order():
    buffer = RolloutBuffer.from_rollout(make_rollout(), 0.99, 0.95)
    generator = torch.Generator().manual_seed(0)
    epochs = [buffer.minibatches(2, generator) for _ in range(4)]
    for minibatches in epochs:
        assert [len(mb["states"]) for mb in minibatches] == [2, 1]
        assert sorted(s for mb in minibatches for s in mb["states"]) == ["a0", "a1", "b0"]
        for mb in minibatches:  # each row keeps its own tensors
            for state, action in zip(mb["states"], mb["actions"].tolist(), strict=True):
                assert action == {"a0": 1, "b0": 2, "a1": 3}[state]
    assert len({tuple(s for mb in minibatches for s in mb["states"]) for minibatches in epochs}) > 1


def test_survives_a_checkpoint():
    buffer = RolloutBuffer.from_rollout(make_rollout(), 0.99, 0.95)
    restored = RolloutBuffer.from_state_dict(buffer.state_dict())
    torch.testing.assert_close(restored.advantages, buffer.advantages)
    assert restored.states == buffer.states
