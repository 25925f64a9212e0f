import math

import pytest
import torch

from instrl_trl.trainer.ppo_loss import ppo_loss


def make_batch(ratios, advantages, new_values=(1.0, 2.0, 3.0, 4.0), returns=(1.0, 0.0, 3.0, 6.0)):
    new_logprobs = torch.tensor(ratios).log().requires_grad_()
    return {
        "new_logprobs": new_logprobs,
        "old_logprobs": torch.zeros(len(ratios)),
        "advantages": torch.tensor(advantages),
        "new_values": torch.tensor(new_values, requires_grad=True),
        "old_values": torch.zeros(len(new_values)),
        "returns": torch.tensor(returns),
        "entropy": torch.tensor([0.5, 1.0, 1.5, 1.0], requires_grad=True),
    }


def test_ppo_loss_hand_computed():
    batch = make_batch(ratios=[1.5, 0.5, 1.1, 0.9], advantages=[1.0, -1.0, 2.0, -2.0])
    loss, stats = ppo_loss(**batch, epsilon=0.2, vf_coef=0.5, entropy_coef=0.1)

    # max(-A * r, -A * clip(r, 0.8, 1.2)): [-1.2, 0.8, -2.2, 1.8] -> mean -0.2
    assert stats["policy_loss"].item() == pytest.approx(-0.2)
    # 0.5 * mean([0, 4, 0, 4])
    assert stats["value_loss"].item() == pytest.approx(1.0)
    assert stats["entropy"].item() == pytest.approx(1.0)
    # 1.5 and 0.5 lie outside [0.8, 1.2]; 1.1 and 0.9 inside
    assert stats["clip_fraction"].item() == pytest.approx(0.5)
    assert stats["ratio_mean"].item() == pytest.approx(1.0)
    expected_kl = sum((r - 1) - math.log(r) for r in [1.5, 0.5, 1.1, 0.9]) / 4
    assert stats["approx_kl"].item() == pytest.approx(expected_kl)
    assert stats["kl"].item() == 0.0
    # -0.2 - 0.1 * 1.0 + 0.5 * 1.0
    assert loss.item() == pytest.approx(0.2)

    for value in stats.values():
        assert value.dim() == 0 and not value.requires_grad


@pytest.mark.parametrize(
    "ratio, advantage, expected_loss, expected_grad",
    [
        (1.5, 1.0, -1.2, 0.0),  # A > 0, ratio above 1 + eps: clipped, no gradient
        (0.5, 1.0, -0.5, -0.5),  # A > 0, ratio below 1 - eps: the unclipped term is the max, gradient flows
        (0.5, -1.0, 0.8, 0.0),  # A < 0, ratio below 1 - eps: clipped, no gradient
        (1.5, -1.0, 1.5, 1.5),  # A < 0, ratio above 1 + eps: the unclipped term is the max, gradient flows
        (1.1, 1.0, -1.1, -1.1),  # inside the range: plain surrogate
    ],
)
def test_ppo_loss_clipping_both_sides(ratio, advantage, expected_loss, expected_grad):
    new_logprobs = torch.tensor([math.log(ratio)], requires_grad=True)
    zeros = torch.zeros(1)
    loss, stats = ppo_loss(
        new_logprobs, zeros, torch.tensor([advantage]), zeros, zeros, zeros, zeros, epsilon=0.2, vf_coef=0.0
    )
    assert stats["policy_loss"].item() == pytest.approx(expected_loss)
    loss.backward()
    # d(-A * exp(logp)) / dlogp = -A * ratio when unclipped
    assert new_logprobs.grad.item() == pytest.approx(expected_grad)


def test_ppo_loss_epsilon_high():
    batch = make_batch(ratios=[1.5, 0.5, 1.1, 0.9], advantages=[1.0, -1.0, 2.0, -2.0])
    _, stats = ppo_loss(**batch, epsilon=0.2, epsilon_high=0.6)
    # Ratio 1.5 is now inside [0.8, 1.6]: [-1.5, 0.8, -2.2, 1.8] -> mean -0.275; only 0.5 is clipped.
    assert stats["policy_loss"].item() == pytest.approx(-0.275)
    assert stats["clip_fraction"].item() == pytest.approx(0.25)


def test_ppo_loss_value_clipping():
    batch = make_batch(ratios=[1.0, 1.0, 1.0, 1.0], advantages=[0.0, 0.0, 0.0, 0.0])
    _, stats = ppo_loss(**batch, value_clip=1.5)
    # Clipped values around old 0: [1, 1.5, 1.5, 1.5] -> squared errors [0, 2.25, 2.25, 20.25];
    # unclipped [0, 4, 0, 4]; elementwise max [0, 4, 2.25, 20.25] -> 0.5 * mean = 3.3125
    assert stats["value_loss"].item() == pytest.approx(3.3125)
    _, stats = ppo_loss(**batch, value_clip=None)
    assert stats["value_loss"].item() == pytest.approx(1.0)


def test_ppo_loss_entropy_bonus_lowers_loss():
    batch = make_batch(ratios=[1.0, 1.0, 1.0, 1.0], advantages=[0.0, 0.0, 0.0, 0.0])
    loss_without, _ = ppo_loss(**batch, entropy_coef=0.0)
    loss_with, _ = ppo_loss(**batch, entropy_coef=0.1)
    assert loss_with.item() == pytest.approx(loss_without.item() - 0.1 * 1.0)
    loss_with.backward()
    # Minimizing the loss increases the entropy.
    torch.testing.assert_close(batch["entropy"].grad, torch.full((4,), -0.1 / 4))


def test_ppo_loss_reference_kl():
    batch = make_batch(ratios=[1.5, 0.5, 1.1, 0.9], advantages=[1.0, -1.0, 2.0, -2.0])
    loss_no_ref, _ = ppo_loss(**batch)

    _, stats = ppo_loss(**batch, ref_logprobs=batch["new_logprobs"].detach().clone(), beta=0.5)
    assert stats["kl"].item() == pytest.approx(0.0, abs=1e-7)

    # ref - new = log 2 everywhere: k3 = 2 - log 2 - 1
    ref_logprobs = batch["new_logprobs"].detach() + math.log(2.0)
    loss, stats = ppo_loss(**batch, ref_logprobs=ref_logprobs, beta=0.5)
    assert stats["kl"].item() == pytest.approx(1 - math.log(2.0))
    assert loss.item() == pytest.approx(loss_no_ref.item() + 0.5 * (1 - math.log(2.0)))
