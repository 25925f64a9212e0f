"""Generalized advantage estimation and the statistics PPO logs around it (pure tensor functions)."""

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    next_done: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""
    Generalized advantage estimation ([GAE](https://huggingface.co/papers/1506.02438)) over a rollout in CleanRL's
    layout (`cleanrl/ppo.py`): environments run continuously and reset themselves when an episode ends.

    Args:
        rewards (`torch.Tensor`):
            Rewards of shape `(num_steps, num_envs)`; `rewards[t]` is the reward received after the action at step `t`.
        values (`torch.Tensor`):
            Value estimates of shape `(num_steps, num_envs)` for the observation at each step.
        dones (`torch.Tensor`):
            Flags of shape `(num_steps, num_envs)`; `dones[t]` is `1` when the observation of step `t` is the first of
            a new episode (the previous episode ended with step `t - 1`), as in CleanRL.
        next_value (`torch.Tensor`):
            Value estimate of shape `(num_envs,)` for the observation following the last step, used to bootstrap.
        next_done (`torch.Tensor`):
            Flags of shape `(num_envs,)` telling whether the last step ended its episode (then no bootstrap).
        gamma (`float`):
            Discount factor.
        gae_lambda (`float`):
            GAE smoothing factor (`1.0` gives Monte-Carlo returns minus the value, `0.0` the one-step TD error).

    Returns:
        `tuple[torch.Tensor, torch.Tensor]`:
            The advantages and the returns (`advantages + values`), both of shape `(num_steps, num_envs)`.
    """
    num_steps = rewards.shape[0]
    dones = dones.to(values.dtype)
    advantages = torch.zeros_like(values)
    lastgaelam = torch.zeros_like(next_value, dtype=values.dtype)
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal = 1.0 - next_done.to(values.dtype)
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    returns = advantages + values
    return advantages, returns


def compute_episode_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""
    Generalized advantage estimation ([GAE](https://huggingface.co/papers/1506.02438)) over complete episodes padded
    to a common length, one episode per row.

    Every episode ends after its last real step and is terminal: the value after it is taken as `0`, so nothing is
    bootstrapped. Padded positions get an advantage and a return of `0`.

    ```
    mask     1 1 1 0 0      episode 0: 3 real steps, then padding
             1 1 1 1 1      episode 1: 5 real steps
    ```

    Args:
        rewards (`torch.Tensor`):
            Rewards of shape `(num_episodes, max_steps)`; `rewards[i, t]` is the reward after the action at step `t`.
        values (`torch.Tensor`):
            Value estimates of shape `(num_episodes, max_steps)` for the state at each step.
        mask (`torch.Tensor`):
            Tensor of shape `(num_episodes, max_steps)`, `1` (or `True`) for real steps and `0` for padding. Real steps
            come first in each row (right padding).
        gamma (`float`):
            Discount factor.
        gae_lambda (`float`):
            GAE smoothing factor (`1.0` gives Monte-Carlo returns minus the value, `0.0` the one-step TD error).

    Returns:
        `tuple[torch.Tensor, torch.Tensor]`:
            The advantages and the returns (`advantages + values` on real steps), both of shape
            `(num_episodes, max_steps)`, zero on padded positions.
    """
    mask = mask.to(values.dtype)
    # Padded values and rewards may hold anything (often garbage from a padded forward pass): zero them once
    rewards, values = rewards * mask, values * mask
    # In CleanRL's time-major layout a padded step reads as "a new episode starts here", so nothing crosses the end
    # of an episode; every episode is terminal after its last row (next_done = 1, nothing bootstrapped).
    advantages, returns = compute_gae(
        rewards.T,
        values.T,
        dones=1 - mask.T,
        next_value=torch.zeros_like(values[:, 0]),
        next_done=torch.ones_like(values[:, 0]),
        gamma=gamma,
        gae_lambda=gae_lambda,
    )
    return advantages.T * mask, returns.T * mask


def normalize_advantages(
    advantages: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    r"""
    Normalizes advantages to zero mean and unit standard deviation, optionally over the real (unmasked) entries only.

    Args:
        advantages (`torch.Tensor`):
            Advantages of any shape.
        mask (`torch.Tensor` or `None`, *optional*, defaults to `None`):
            Tensor of the same shape, `1` (or `True`) for entries that count. Masked-out entries are left at `0` in the
            output. `None` uses every entry.
        eps (`float`, *optional*, defaults to `1e-8`):
            Added to the standard deviation to avoid a division by zero.

    Returns:
        `torch.Tensor`:
            The normalized advantages, of the same shape. The standard deviation is the unbiased one, as
            `torch.Tensor.std` in CleanRL and SB3; a single entry normalizes to `0`.
    """
    if mask is None:
        mask = torch.ones_like(advantages)
    mask = mask.to(advantages.dtype)
    count = mask.sum()
    mean = (advantages * mask).sum() / count.clamp(min=1)
    variance = (((advantages - mean) * mask) ** 2).sum() / (count - 1).clamp(min=1)
    return (advantages - mean) / (variance.sqrt() + eps) * mask


def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    r"""
    Fraction of the variance of the returns that the value function explains, `1 - Var[y - ŷ] / Var[y]`, as in
    CleanRL and SB3.

    `1` is a perfect prediction, `0` is no better than predicting the mean, and a negative value is worse than that.

    Args:
        y_pred (`torch.Tensor`):
            Predicted values (any shape, flattened).
        y_true (`torch.Tensor`):
            Target returns, of the same number of elements.

    Returns:
        `torch.Tensor`:
            A 0-dim tensor; `NaN` when `Var[y]` is `0` (a constant target carries no variance to explain).
    """
    y_pred = y_pred.flatten()
    y_true = y_true.flatten()
    var_y = torch.var(y_true, unbiased=False)
    ratio = torch.var(y_true - y_pred, unbiased=False) / var_y
    return torch.where(var_y == 0, torch.full_like(var_y, float("nan")), 1.0 - ratio)
