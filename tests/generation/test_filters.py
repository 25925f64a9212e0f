import pytest

from instrl_trl.embeddings import SentenceEmbedder
from instrl_trl.generation.evolve import Candidate
from instrl_trl.generation.filters import Deduplicator


POEM = "Write a short poem about the ocean at night."
POEM_NEAR_COPY = "Write a short poem about the ocean at night time."  # cosine ~0.99 with MiniLM
DERIVATIVE = "Explain how to compute the derivative of a polynomial."  # cosine ~0.04 with POEM


def candidate(instruction, seed_index=0):
    return Candidate(instruction, "seed", seed_index, ("deepening",), 1, 1.0, ())


def instructions(candidates):
    return [c.instruction for c in candidates]


class ExplodingEmbedder:
    """Stands in for the embedding model where none may be loaded."""

    def encode(self, texts):
        raise AssertionError("the embedder must not be used")


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder()


def test_exact_duplicates_are_dropped_within_a_batch():
    deduplicator = Deduplicator(threshold=1.0, embedder=ExplodingEmbedder())
    batch = [
        candidate("Name three rivers."),
        candidate("name three RIVERS!"),  # same words, other case and punctuation
        candidate("  Name, three rivers  "),
        candidate("Name four rivers."),
    ]
    kept = deduplicator.filter(batch)
    assert instructions(kept) == ["Name three rivers.", "Name four rivers."]
    assert kept[0] is batch[0]  # the first of a group is the one kept


def test_exact_duplicates_are_dropped_across_batches():
    deduplicator = Deduplicator(threshold=1.0, embedder=ExplodingEmbedder())
    assert instructions(deduplicator.filter([candidate("Name three rivers.")])) == ["Name three rivers."]
    second = deduplicator.filter([candidate("NAME THREE RIVERS?", 1), candidate("Name three lakes.", 1)])
    assert instructions(second) == ["Name three lakes."]
    assert deduplicator.filter([candidate("name three lakes")]) == []
    assert deduplicator.filter([]) == []


def test_threshold_one_never_loads_the_embedder():
    deduplicator = Deduplicator(threshold=1.0, embedder=ExplodingEmbedder())
    assert not deduplicator.uses_embeddings
    deduplicator.remember([POEM, DERIVATIVE])
    kept = deduplicator.filter([candidate(POEM_NEAR_COPY), candidate(POEM)])
    assert instructions(kept) == [POEM_NEAR_COPY]  # near-duplicates survive, exact ones do not


def test_threshold_one_creates_no_default_embedder():
    deduplicator = Deduplicator(threshold=1.0)
    deduplicator.remember(["Name three rivers."])
    deduplicator.filter([candidate("Name three lakes.")])
    assert deduplicator._embedder is None


def test_near_duplicates_are_dropped(embedder):
    deduplicator = Deduplicator(threshold=0.9, embedder=embedder)
    assert deduplicator.uses_embeddings
    # within one batch
    kept = deduplicator.filter([candidate(POEM), candidate(POEM_NEAR_COPY), candidate(DERIVATIVE)])
    assert instructions(kept) == [POEM, DERIVATIVE]
    # across batches: the near copy still counts as a duplicate of the kept poem, an unrelated one is kept
    later = deduplicator.filter([candidate(POEM_NEAR_COPY, 1), candidate("List three prime numbers and prove it.", 1)])
    assert instructions(later) == ["List three prime numbers and prove it."]


def test_remember_makes_earlier_rows_count(embedder):
    deduplicator = Deduplicator(threshold=0.9, embedder=embedder)
    deduplicator.remember([POEM])  # e.g. read back from shards on resume
    kept = deduplicator.filter([candidate(POEM.upper()), candidate(POEM_NEAR_COPY), candidate(DERIVATIVE)])
    assert instructions(kept) == [DERIVATIVE]

    fresh = Deduplicator(threshold=0.9, embedder=embedder)
    assert instructions(fresh.filter([candidate(POEM_NEAR_COPY), candidate(DERIVATIVE)])) == [
        POEM_NEAR_COPY,
        DERIVATIVE,
    ]
