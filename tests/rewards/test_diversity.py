import doctest
import json

import pytest
import torch

from instrl_trl.embeddings import SentenceEmbedder
from instrl_trl.rewards import diversity
from instrl_trl.rewards.diversity import NoveltyReward


@pytest.fixture(scope="session")
def embedder():
    return SentenceEmbedder()


class CountingEmbedder:
    """Wraps an embedder and records how many texts it was asked to embed."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.num_encoded = 0

    def encode(self, texts):
        self.num_encoded += len(texts)
        return self.embedder.encode(texts)


def test_first_accepted_is_fully_novel_and_non_accepted_get_zero(embedder):
    novelty = NoveltyReward(embedder=embedder)
    rewards = novelty(["a", "b"], ["Write a poem about the sea.", "Name a fruit."], accepted=[False, True])
    assert rewards == [0.0, 1.0]
    assert len(novelty.memory) == 1  # only accepted instructions are remembered


def test_near_duplicate_less_novel_than_unrelated(embedder):
    novelty = NoveltyReward(embedder=embedder)
    novelty(["seed"], ["Write a short poem about the ocean at night."], accepted=[True])
    near_duplicate, unrelated = novelty(
        ["seed", "seed"],
        ["Write a short poem about the sea at night.", "Explain how to compute the determinant of a 3x3 matrix."],
        accepted=[True, True],
    )
    assert 0.0 <= near_duplicate < unrelated <= 1.0
    assert near_duplicate < 0.3


def test_in_batch_duplicates_processed_in_order(embedder):
    novelty = NoveltyReward(embedder=embedder)
    text = "Describe the water cycle in three sentences."
    rewards = novelty(["seed"] * 2, [text, text], accepted=[True, True])
    assert rewards[0] == 1.0
    assert rewards[1] == pytest.approx(0.0, abs=1e-5)


def test_deterministic_and_independent_of_batch_split(embedder):
    texts = [
        "Write a haiku about autumn leaves.",
        "Write a haiku about falling leaves in autumn.",
        "List the planets of the solar system.",
        "Translate 'good morning' into French.",
        "Name the planets in our solar system in order.",
    ]
    accepted = [True, True, False, True, True]
    seeds = ["seed"] * len(texts)
    all_at_once = NoveltyReward(embedder=embedder)(seeds, texts, accepted=accepted)
    again = NoveltyReward(embedder=embedder)(seeds, texts, accepted=accepted)
    assert all_at_once == again

    split = NoveltyReward(embedder=embedder)
    first = split(seeds[:2], texts[:2], accepted=accepted[:2])
    second = split(seeds[2:], texts[2:], accepted=accepted[2:])
    assert first + second == pytest.approx(all_at_once, abs=1e-5)


def test_bounded_memory_forgets_oldest(embedder):
    text = "Describe the water cycle in three sentences."
    unrelated = "Give three tips for learning to play chess."
    forgetful = NoveltyReward(embedder=embedder, max_memory=1)
    remembering = NoveltyReward(embedder=embedder, max_memory=2)
    for novelty in (forgetful, remembering):
        novelty(["seed"], [text], accepted=[True])
        novelty(["seed"], [unrelated], accepted=[True])
    # With one slot, the first text was pushed out by the unrelated one, so it is novel again.
    assert forgetful(["seed"], [text], accepted=[True])[0] > 0.5
    assert remembering(["seed"], [text], accepted=[True])[0] == pytest.approx(0.0, abs=1e-5)
    assert len(forgetful.memory) == 1

    # Inside one batch too: with one slot, the third item sees only the second.
    one_slot = NoveltyReward(embedder=embedder, max_memory=1)
    rewards = one_slot(["seed"] * 3, [text, unrelated, text], accepted=[True] * 3)
    assert rewards[2] > 0.5


def test_no_embedding_without_accepted_items(embedder):
    counting = CountingEmbedder(embedder)
    novelty = NoveltyReward(embedder=counting)
    assert novelty(["a", "b"], ["c", "d"], accepted=[False, False]) == [0.0, 0.0]
    assert counting.num_encoded == 0
    novelty(["a", "b"], ["c", "d"], accepted=[True, False])
    assert counting.num_encoded == 1


def test_embedder_is_created_lazily():
    novelty = NoveltyReward()
    assert novelty._embedder is None
    assert novelty([], [], accepted=[]) == []
    assert novelty._embedder is None


def test_state_dict_round_trip(embedder, tmp_path):
    texts = ["Write a haiku about autumn leaves.", "List the planets of the solar system."]
    novelty = NoveltyReward(embedder=embedder)
    novelty(["seed"] * 2, texts, accepted=[True, True])

    path = tmp_path / "novelty.json"
    path.write_text(json.dumps(novelty.state_dict()))
    restored = NoveltyReward(embedder=embedder)
    restored.load_state_dict(json.loads(path.read_text()))

    assert len(restored.memory) == 2
    torch.testing.assert_close(torch.stack(list(restored.memory)), torch.stack(list(novelty.memory)), rtol=0, atol=0)
    next_texts = ["Write a haiku about spring rain.", "Explain photosynthesis."]
    assert restored(["seed"] * 2, next_texts, accepted=[True, True]) == novelty(
        ["seed"] * 2, next_texts, accepted=[True, True]
    )


def test_load_state_dict_keeps_most_recent():
    novelty = NoveltyReward(embedder=None, max_memory=2)
    novelty.load_state_dict({"max_memory": 4, "embeddings": [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]})
    torch.testing.assert_close(torch.stack(list(novelty.memory)), torch.tensor([[0.0, 1.0], [0.6, 0.8]]))
    novelty.load_state_dict({"max_memory": 2, "embeddings": []})
    assert len(novelty.memory) == 0
    assert novelty.state_dict() == {"max_memory": 2, "embeddings": []}


def test_invalid_max_memory():
    with pytest.raises(ValueError, match="max_memory"):
        NoveltyReward(max_memory=0)


def test_docstring_example():
    results = doctest.testmod(diversity)
    assert results.attempted > 0
    assert results.failed == 0
