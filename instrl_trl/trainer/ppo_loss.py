"""The PPO objective: clipped policy loss, value loss, entropy bonus and an optional KL penalty."""

import torch


def ppo_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    new_values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    vf_coef: float = 0.5,
    entropy_coef: float = 0.0,
    value_clip: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    beta: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""
    Computes the [PPO](https://huggingface.co/papers/1707.06347) loss on a minibatch of steps, as in CleanRL's
    `cleanrl/ppo.py`:

    ```
    loss = policy_loss - entropy_coef * entropy + vf_coef * value_loss + beta * kl
    ```

    All tensor arguments are 1-D, one entry per step of the minibatch.

    Args:
        new_logprobs (`torch.Tensor`):
            Log-probabilities of the taken actions under the current policy (with gradients).
        old_logprobs (`torch.Tensor`):
            Log-probabilities of the same actions under the policy that collected the rollout.
        advantages (`torch.Tensor`):
            Advantages of the taken actions (already normalized if wanted).
        new_values (`torch.Tensor`):
            Value estimates under the current value head (with gradients).
        old_values (`torch.Tensor`):
            Value estimates at rollout time; used only when `value_clip` is set.
        returns (`torch.Tensor`):
            Regression targets of the value head.
        entropy (`torch.Tensor`):
            Entropy of the current policy's action distribution at each step.
        epsilon (`float`, *optional*, defaults to `0.2`):
            Lower clipping bound of the probability ratio (`1 - epsilon`); PPO's `clip_range`.
        epsilon_high (`float` or `None`, *optional*, defaults to `None`):
            Upper clipping bound of the ratio (`1 + epsilon_high`), as in GRPO. `None` uses `epsilon`.
        vf_coef (`float`, *optional*, defaults to `0.5`):
            Weight of the value loss.
        entropy_coef (`float`, *optional*, defaults to `0.0`):
            Weight of the entropy bonus (subtracted from the loss, so a positive value favours exploration).
        value_clip (`float` or `None`, *optional*, defaults to `None`):
            If set, the new values are also clipped to `old_values ± value_clip` and the larger of the two squared
            errors is used (CleanRL's `clip_vloss`). `None` disables value clipping.
        ref_logprobs (`torch.Tensor` or `None`, *optional*, defaults to `None`):
            Log-probabilities of the taken actions under a reference (initial) policy. When given, the KL divergence
            to it is estimated with the k3 estimator `exp(ref - new) - (ref - new) - 1`, as in GRPO.
        beta (`float`, *optional*, defaults to `0.0`):
            Weight of the KL penalty against the reference policy.

    Returns:
        `tuple[torch.Tensor, dict[str, torch.Tensor]]`:
            The scalar loss and a dict of detached 0-dim tensors: `policy_loss`, `value_loss`, `entropy`,
            `approx_kl` (CleanRL's `((ratio - 1) - logratio).mean()`), `clip_fraction` (share of ratios outside the
            clipping range), `kl` (to the reference policy, `0` when `ref_logprobs` is `None`) and `ratio_mean`.
    """
    epsilon_high = epsilon if epsilon_high is None else epsilon_high

    logratio = new_logprobs - old_logprobs
    ratio = logratio.exp()
    with torch.no_grad():
        # http://joschu.net/blog/kl-approx.html
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio < 1 - epsilon) | (ratio > 1 + epsilon_high)).float().mean()

    # Policy loss
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - epsilon, 1 + epsilon_high)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()

    # Value loss
    v_loss_unclipped = (new_values - returns) ** 2
    if value_clip is not None:
        v_clipped = old_values + torch.clamp(new_values - old_values, -value_clip, value_clip)
        v_loss_clipped = (v_clipped - returns) ** 2
        v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
    else:
        v_loss = 0.5 * v_loss_unclipped.mean()

    entropy_loss = entropy.mean()

    # KL penalty against the reference policy (k3 estimator, always >= 0)
    if ref_logprobs is not None:
        ref_logratio = ref_logprobs - new_logprobs
        kl = (torch.exp(ref_logratio) - ref_logratio - 1).mean()
    else:
        kl = torch.zeros((), dtype=new_logprobs.dtype, device=new_logprobs.device)

    loss = pg_loss - entropy_coef * entropy_loss + vf_coef * v_loss + beta * kl
    stats = {
        "policy_loss": pg_loss.detach(),
        "value_loss": v_loss.detach(),
        "entropy": entropy_loss.detach(),
        "approx_kl": approx_kl,
        "clip_fraction": clipfrac,
        "kl": kl.detach(),
        "ratio_mean": ratio.detach().mean(),
    }
    return loss, stats
