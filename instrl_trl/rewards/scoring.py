"""Combining reward functions into one reward per step."""

from collections.abc import Callable

import torch


def reward_func_name(func: Callable) -> str:
    return getattr(func, "__name__", type(func).__name__)


def weighted_rewards(
    reward_funcs: list[Callable],
    reward_weights: torch.Tensor,
    instructions: list[str],
    new_instructions: list[str],
    **episode_fields,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    Calls every reward function on one step's items and returns `(weighted sum per item, {name: values})`. A function
    may return `None` for an item (not applicable): it counts as 0 in the sum and NaN in its own values.
    """
    components = {}
    for func in reward_funcs:
        values = func(instructions, new_instructions, **episode_fields)
        components[reward_func_name(func)] = torch.tensor(
            [float("nan") if value is None else value for value in values], dtype=torch.float32
        )
    stacked = torch.stack(list(components.values()), dim=-1)
    return (torch.nan_to_num(stacked) * reward_weights).sum(-1), components
