"""Reward functions in TRL's `reward_funcs` style, and their names for recipes."""

from collections.abc import Callable

from ..embeddings import SentenceEmbedder
from .cost import query_cost
from .diversity import NoveltyReward
from .elimination import elimination_penalty
from .reviewer import information_gain_reward


RewardFunc = Callable[..., list[float]]


def _novelty_reward(embedding_model: str | None = None) -> NoveltyReward:
    return NoveltyReward(embedder=SentenceEmbedder(embedding_model) if embedding_model is not None else None)


# Name used in recipes (`reward_funcs: [information_gain, novelty]`) -> callable returning a fresh reward function.
# Factories rather than functions because `NoveltyReward` holds state (its memory) that each trainer owns. Every
# factory takes the keyword arguments of `get_reward_funcs`; stateless ones ignore them.
REWARD_FUNCS: dict[str, Callable[..., RewardFunc]] = {
    "information_gain": lambda **kwargs: information_gain_reward,
    "elimination": lambda **kwargs: elimination_penalty,
    "novelty": _novelty_reward,
    "query_cost": lambda **kwargs: query_cost,
}


def get_reward_funcs(names: list[str], embedding_model: str | None = None) -> list[RewardFunc]:
    r"""
    Builds the reward functions named in a recipe.

    Args:
        names (`list[str]`):
            Names of reward functions, keys of `REWARD_FUNCS`.
        embedding_model (`str` or `None`, *optional*, defaults to `None`):
            Sentence-transformers model (local folder or id) of the `novelty` reward. `None` uses
            `DEFAULT_EMBEDDING_MODEL` (all-MiniLM-L6-v2, packaged). The model is loaded on first use.

    Returns:
        `list[Callable]`:
            One reward function per name, in order. Stateful ones (`novelty`) are fresh instances.

    Example:
    ```python
    >>> from instrl_trl.rewards import get_reward_funcs

    >>> [func.__name__ for func in get_reward_funcs(["information_gain", "query_cost"])]
    ['information_gain_reward', 'query_cost']

    ```
    """
    unknown = [name for name in names if name not in REWARD_FUNCS]
    if unknown:
        raise ValueError(
            f"Unknown reward function(s) {unknown} in `reward_funcs`. Valid names are: {', '.join(REWARD_FUNCS)}."
        )
    return [REWARD_FUNCS[name](embedding_model=embedding_model) for name in names]


__all__ = [
    "REWARD_FUNCS",
    "NoveltyReward",
    "elimination_penalty",
    "get_reward_funcs",
    "information_gain_reward",
    "query_cost",
]
