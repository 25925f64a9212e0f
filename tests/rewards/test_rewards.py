import doctest

import pytest

import instrl_trl.rewards
from instrl_trl.embeddings import DEFAULT_EMBEDDING_MODEL
from instrl_trl.rewards import (
    REWARD_FUNCS,
    NoveltyReward,
    cost,
    elimination,
    elimination_penalty,
    get_reward_funcs,
    information_gain_reward,
    query_cost,
    reviewer,
)


# What the environment passes for a batch of four steps
INSTRUCTIONS = ["Write a poem.", "Write a poem.", "Name a fruit.", "Name a fruit."]
NEW_INSTRUCTIONS = ["Write a poem about the sea.", "Write a poem.", "I cannot help.", "Name a fruit."]
EPISODE_FIELDS = {
    "information_gain": [True, False, True, False],
    "elimination": [None, "copy", "refusal", None],
    "queries": [2, 1, 3, 0],
    "operation": ["add_constraints", "deepen", "concretize", "stop"],
    "accepted": [True, False, False, False],
}


def test_information_gain_reward():
    assert information_gain_reward(INSTRUCTIONS, NEW_INSTRUCTIONS, **EPISODE_FIELDS) == [1.0, 0.0, 0.0, 0.0]


def test_elimination_penalty():
    assert elimination_penalty(INSTRUCTIONS, NEW_INSTRUCTIONS, **EPISODE_FIELDS) == [0.0, -1.0, -1.0, 0.0]


def test_query_cost():
    rewards = query_cost(INSTRUCTIONS, NEW_INSTRUCTIONS, **EPISODE_FIELDS)
    assert rewards == [-2.0, -1.0, -3.0, 0.0]
    assert all(isinstance(reward, float) for reward in rewards)


def test_get_reward_funcs():
    funcs = get_reward_funcs(["information_gain", "elimination", "query_cost", "novelty"])
    assert funcs[:3] == [information_gain_reward, elimination_penalty, query_cost]
    assert isinstance(funcs[3], NoveltyReward)
    assert funcs[3].__name__ == "novelty"
    # Stateful reward functions are fresh per call.
    assert get_reward_funcs(["novelty"])[0] is not funcs[3]
    assert set(REWARD_FUNCS) == {"information_gain", "elimination", "novelty", "query_cost"}


def test_get_reward_funcs_embedding_model():
    (novelty,) = get_reward_funcs(["novelty"], embedding_model=DEFAULT_EMBEDDING_MODEL)
    assert novelty.embedder.model_name_or_path == DEFAULT_EMBEDDING_MODEL
    assert novelty.embedder._model is None  # still lazy


def test_get_reward_funcs_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown reward function") as excinfo:
        get_reward_funcs(["information_gain", "informaton_gain"])
    message = str(excinfo.value)
    assert "informaton_gain" in message
    for name in REWARD_FUNCS:
        assert name in message


@pytest.mark.parametrize("module", [instrl_trl.rewards, reviewer, elimination, cost])
def test_docstring_examples(module):
    # The NoveltyReward example loads the real embedder and runs in tests/rewards/test_diversity.py.
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0
    assert results.failed == 0
