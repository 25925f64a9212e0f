import math

import pytest
import torch

from instrl_trl.trainer.advantages import (
    compute_episode_gae,
    compute_gae,
    explained_variance,
    normalize_advantages,
)


def reference_gae(rewards, values, dones, next_value, next_done, gamma, gae_lambda):
    """Plain-Python GAE over one environment, CleanRL convention (`dones[t]`: step t starts a new episode)."""
    num_steps = len(rewards)
    advantages = [0.0] * num_steps
    lastgaelam = 0.0
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal, nextvalue = 1.0 - next_done, next_value
        else:
            nextnonterminal, nextvalue = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * nextvalue * nextnonterminal - values[t]
        lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages


def reference_episode_gae(rewards, values, gamma, gae_lambda):
    """Plain-Python GAE over one complete terminal episode (no padding)."""
    advantages = [0.0] * len(rewards)
    lastgaelam = 0.0
    for t in reversed(range(len(rewards))):
        nextvalue = values[t + 1] if t + 1 < len(rewards) else 0.0
        delta = rewards[t] + gamma * nextvalue - values[t]
        lastgaelam = delta + gamma * gae_lambda * lastgaelam
        advantages[t] = lastgaelam
    return advantages


@pytest.mark.parametrize("gamma, gae_lambda", [(0.995, 0.97), (0.9, 0.0), (1.0, 1.0)])
def test_compute_gae_matches_reference_loop(gamma, gae_lambda):
    generator = torch.Generator().manual_seed(0)
    num_steps, num_envs = 16, 5
    rewards = torch.randn(num_steps, num_envs, generator=generator, dtype=torch.float64)
    values = torch.randn(num_steps, num_envs, generator=generator, dtype=torch.float64)
    dones = (torch.rand(num_steps, num_envs, generator=generator) < 0.2).double()
    next_value = torch.randn(num_envs, generator=generator, dtype=torch.float64)
    next_done = (torch.rand(num_envs, generator=generator) < 0.5).double()

    advantages, returns = compute_gae(rewards, values, dones, next_value, next_done, gamma, gae_lambda)

    for env in range(num_envs):
        expected = reference_gae(
            rewards[:, env].tolist(),
            values[:, env].tolist(),
            dones[:, env].tolist(),
            next_value[env].item(),
            next_done[env].item(),
            gamma,
            gae_lambda,
        )
        torch.testing.assert_close(advantages[:, env], torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(returns, advantages + values)


def test_compute_gae_analytic():
    # One environment, one episode of 3 steps ending at the last step, reward 1 per step, zero values:
    # the advantage is the discounted reward-to-go, 1 + g + g^2, 1 + g, 1 (SB3 tests/test_gae.py).
    gamma = 0.5
    rewards = torch.ones(3, 1)
    values = torch.zeros(3, 1)
    dones = torch.zeros(3, 1)
    advantages, returns = compute_gae(
        rewards, values, dones, next_value=torch.tensor([10.0]), next_done=torch.tensor([1.0]), gamma=gamma,
        gae_lambda=1.0,
    )  # fmt: skip
    torch.testing.assert_close(advantages[:, 0], torch.tensor([1.75, 1.5, 1.0]))
    torch.testing.assert_close(returns, advantages)

    # Not done: the next value (10) is bootstrapped, discounted by gamma^(3 - t).
    advantages, _ = compute_gae(
        rewards, values, dones, next_value=torch.tensor([10.0]), next_done=torch.tensor([0.0]), gamma=gamma,
        gae_lambda=1.0,
    )  # fmt: skip
    torch.testing.assert_close(advantages[:, 0], torch.tensor([1.75 + 1.25, 1.5 + 2.5, 1.0 + 5.0]))


def test_compute_gae_episode_boundary_stops_propagation():
    # dones[2] = 1: step 2 starts a new episode, so rewards after step 1 must not flow into steps 0 and 1.
    rewards = torch.tensor([[0.0], [0.0], [100.0]])
    values = torch.zeros(3, 1)
    dones = torch.tensor([[0.0], [0.0], [1.0]])
    advantages, _ = compute_gae(rewards, values, dones, torch.zeros(1), torch.ones(1), gamma=1.0, gae_lambda=1.0)
    torch.testing.assert_close(advantages[:, 0], torch.tensor([0.0, 0.0, 100.0]))


@pytest.mark.parametrize("gamma, gae_lambda", [(0.995, 0.97), (0.8, 0.5), (1.0, 0.0)])
def test_compute_episode_gae_matches_per_episode_loop(gamma, gae_lambda):
    generator = torch.Generator().manual_seed(1)
    lengths = [1, 6, 3, 4, 6]
    max_steps = max(lengths)
    rewards = torch.randn(len(lengths), max_steps, generator=generator, dtype=torch.float64)
    values = torch.randn(len(lengths), max_steps, generator=generator, dtype=torch.float64)
    mask = torch.arange(max_steps).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)

    advantages, returns = compute_episode_gae(rewards, values, mask, gamma, gae_lambda)

    for episode, length in enumerate(lengths):
        expected = reference_episode_gae(
            rewards[episode, :length].tolist(), values[episode, :length].tolist(), gamma, gae_lambda
        )
        torch.testing.assert_close(advantages[episode, :length], torch.tensor(expected, dtype=torch.float64))
        torch.testing.assert_close(returns[episode, :length], advantages[episode, :length] + values[episode, :length])
        # Padded positions: zero advantage and zero return, whatever the padded rewards and values were.
        assert torch.all(advantages[episode, length:] == 0)
        assert torch.all(returns[episode, length:] == 0)


def test_compute_episode_gae_undiscounted_is_reward_to_go_minus_value():
    rewards = torch.tensor([[1.0, 0.0, 2.0, 0.0], [3.0, 1.0, 7.0, 9.0]])
    values = torch.tensor([[0.5, 0.25, 1.0, 5.0], [1.0, 2.0, 3.0, 4.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])

    advantages, returns = compute_episode_gae(rewards, values, mask, gamma=1.0, gae_lambda=1.0)

    reward_to_go = torch.tensor([[3.0, 2.0, 2.0, 0.0], [20.0, 17.0, 16.0, 9.0]])
    torch.testing.assert_close(advantages, (reward_to_go - values) * mask)
    torch.testing.assert_close(returns, reward_to_go)


def test_normalize_advantages():
    advantages = torch.tensor([1.0, 2.0, 3.0, 4.0])
    normalized = normalize_advantages(advantages)
    torch.testing.assert_close(normalized, (advantages - advantages.mean()) / (advantages.std() + 1e-8))


def test_normalize_advantages_masked():
    advantages = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    normalized = normalize_advantages(advantages, mask)
    real = torch.tensor([1.0, 2.0, 3.0, 4.0])
    expected = (real - real.mean()) / (real.std() + 1e-8)
    torch.testing.assert_close(normalized[:, :2].flatten(), expected)
    assert torch.all(normalized[:, 2] == 0)


def test_normalize_advantages_single_entry_is_finite():
    assert normalize_advantages(torch.tensor([5.0])).item() == 0.0


def test_explained_variance():
    y_true = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(y_true.clone(), y_true).item() == pytest.approx(1.0)
    # Predicting the mean explains nothing.
    assert explained_variance(torch.full_like(y_true, 2.5), y_true).item() == pytest.approx(0.0)
    # 1 - Var[y - ŷ] / Var[y] with y - ŷ = [1, 0, 0, 0]: Var = 0.1875, Var[y] = 1.25.
    y_pred = torch.tensor([0.0, 2.0, 3.0, 4.0])
    assert explained_variance(y_pred, y_true).item() == pytest.approx(1 - 0.1875 / 1.25)


def test_explained_variance_constant_target_is_nan():
    assert math.isnan(explained_variance(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 3.0])).item())
