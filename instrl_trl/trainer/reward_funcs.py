"""The trainer's reward functions and their weights, built and checked together (GRPO's `reward_funcs` step)."""

import torch

from ..rewards import get_reward_funcs
from ..rewards.scoring import reward_func_name


def build_reward_funcs(
    reward_funcs: list, reward_weights: list[float] | None, embedding_model: str | None
) -> tuple[list, list[str], torch.Tensor]:
    """
    Builds the named reward functions (stateful ones fresh, the novelty reward on `embedding_model`) and keeps the
    callables. Returns `(reward_funcs, reward_func_names, reward_weights)`; the weights default to 1 each.
    """
    names = [func for func in reward_funcs if isinstance(func, str)]
    built = iter(get_reward_funcs(names, embedding_model=embedding_model))
    funcs = [next(built) if isinstance(func, str) else func for func in reward_funcs]
    func_names = [reward_func_name(func) for func in funcs]
    if reward_weights is not None and len(reward_weights) != len(funcs):
        raise ValueError(
            f"`reward_weights` has {len(reward_weights)} values for {len(funcs)} reward functions ({func_names}); "
            "give one weight per function."
        )
    weights = reward_weights if reward_weights is not None else [1.0] * len(funcs)
    return funcs, func_names, torch.tensor(weights, dtype=torch.float32)
