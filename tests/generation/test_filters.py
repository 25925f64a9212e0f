import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from instrl_trl.embeddings import SentenceEmbedder
from instrl_trl.generation.evolve import Candidate
from instrl_trl.generation.filters import DEFAULT_DEDUP_THRESHOLDS, Deduplicator, MinHashIndex


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
    deduplicator = Deduplicator("embedding", threshold=1.0, embedder=ExplodingEmbedder())
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
    deduplicator = Deduplicator("embedding", threshold=1.0, embedder=ExplodingEmbedder())
    assert instructions(deduplicator.filter([candidate("Name three rivers.")])) == ["Name three rivers."]
    second = deduplicator.filter([candidate("NAME THREE RIVERS?", 1), candidate("Name three lakes.", 1)])
    assert instructions(second) == ["Name three lakes."]
    assert deduplicator.filter([candidate("name three lakes")]) == []
    assert deduplicator.filter([]) == []


def test_threshold_one_never_loads_the_embedder():
    deduplicator = Deduplicator("embedding", threshold=1.0, embedder=ExplodingEmbedder())
    assert not deduplicator.uses_embeddings
    deduplicator.remember([POEM, DERIVATIVE])
    kept = deduplicator.filter([candidate(POEM_NEAR_COPY), candidate(POEM)])
    assert instructions(kept) == [POEM_NEAR_COPY]  # near-duplicates survive, exact ones do not


def test_threshold_one_creates_no_default_embedder():
    deduplicator = Deduplicator("embedding", threshold=1.0)
    deduplicator.remember(["Name three rivers."])
    deduplicator.filter([candidate("Name three lakes.")])
    assert deduplicator._embedder is None


def test_near_duplicates_are_dropped(embedder):
    deduplicator = Deduplicator("embedding", threshold=0.9, embedder=embedder)
    assert deduplicator.uses_embeddings
    # within one batch
    kept = deduplicator.filter([candidate(POEM), candidate(POEM_NEAR_COPY), candidate(DERIVATIVE)])
    assert instructions(kept) == [POEM, DERIVATIVE]
    # across batches: the near copy still counts as a duplicate of the kept poem, an unrelated one is kept
    later = deduplicator.filter([candidate(POEM_NEAR_COPY, 1), candidate("List three prime numbers and prove it.", 1)])
    assert instructions(later) == ["List three prime numbers and prove it."]


def test_remember_makes_earlier_rows_count(embedder):
    deduplicator = Deduplicator("embedding", threshold=0.9, embedder=embedder)
    deduplicator.remember([POEM])  # e.g. read back from shards on resume
    kept = deduplicator.filter([candidate(POEM.upper()), candidate(POEM_NEAR_COPY), candidate(DERIVATIVE)])
    assert instructions(kept) == [DERIVATIVE]

    fresh = Deduplicator("embedding", threshold=0.9, embedder=embedder)
    assert instructions(fresh.filter([candidate(POEM_NEAR_COPY), candidate(DERIVATIVE)])) == [
        POEM_NEAR_COPY,
        DERIVATIVE,
    ]


# A 32-word instruction, and the same with a 6-word constraint added: 30 of 36 word 3-grams shared (Jaccard 0.83)
BASE = (
    "Write a detailed guide for a beginner gardener who wants to grow tomatoes on a small city balcony, covering "
    "the choice of pots, soil, watering and the first signs of common diseases"
)
WITH_CONSTRAINT = BASE + " in no more than 300 words"
OTHER_CONSTRAINT = BASE + ", and give every step a short title with one example"


def exact_jaccard(first: str, second: str) -> float:
    index = MinHashIndex(0.5)
    a, b = set(index.shingles(first).tolist()), set(index.shingles(second).tolist())
    return len(a & b) / len(a | b)


def test_minhash_is_the_default_and_drops_near_copies_without_an_embedder():
    deduplicator = Deduplicator(embedder=ExplodingEmbedder())
    assert deduplicator.method == "minhash" and deduplicator.threshold == DEFAULT_DEDUP_THRESHOLDS["minhash"] == 0.8
    assert not deduplicator.uses_embeddings
    kept = deduplicator.filter([candidate(POEM), candidate(POEM_NEAR_COPY), candidate(DERIVATIVE)])
    assert exact_jaccard(POEM, POEM_NEAR_COPY) == 7 / 8
    assert instructions(kept) == [POEM, DERIVATIVE]
    # a constraint of 6 words on 32 is a near-copy (0.83); one of 10 words is not (0.75), nor of the other (0.65)
    assert exact_jaccard(BASE, WITH_CONSTRAINT) == pytest.approx(30 / 36)
    assert exact_jaccard(BASE, OTHER_CONSTRAINT) == pytest.approx(30 / 40)
    later = deduplicator.filter([candidate(BASE, 1), candidate(WITH_CONSTRAINT, 1), candidate(OTHER_CONSTRAINT, 1)])
    assert instructions(later) == [BASE, OTHER_CONSTRAINT]


def test_minhash_threshold_is_the_users():
    strict = Deduplicator(threshold=0.9)
    assert instructions(strict.filter([candidate(BASE), candidate(WITH_CONSTRAINT)])) == [BASE, WITH_CONSTRAINT]
    exact_only = Deduplicator(threshold=1.0)
    assert instructions(exact_only.filter([candidate(POEM), candidate(POEM_NEAR_COPY), candidate(POEM.upper())])) == [
        POEM,
        POEM_NEAR_COPY,
    ]


def test_minhash_bands_find_every_pair_the_exact_jaccard_finds():
    """The LSH bands only propose pairs: the kept set equals an all-pairs exact Jaccard filter's."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(40)]
    bases = [[rng.choice(words) for _ in range(rng.randint(8, 30))] for _ in range(40)]
    texts = []
    for _ in range(400):  # variants of a few bases: many pairs around the threshold
        text = list(rng.choice(bases))
        for _ in range(rng.randint(0, 4)):
            position = rng.randrange(len(text) + 1)
            if rng.random() < 0.5 and text:
                del text[min(position, len(text) - 1)]
            else:
                text.insert(position, rng.choice(words))
        texts.append(" ".join(text))
    kept_by_index = instructions(Deduplicator(threshold=0.8).filter([candidate(text) for text in texts]))

    kept, seen = [], set()
    for text in texts:
        if " ".join(text.split()) in seen:
            continue
        seen.add(" ".join(text.split()))
        if all(exact_jaccard(text, other) < 0.8 for other in kept):
            kept.append(text)
    assert kept_by_index == kept
    assert 40 < len(kept) < 350  # the corpus has near-duplicates to find (79 here), and distinct texts to keep


def test_minhash_resume_keeps_what_an_uninterrupted_run_keeps():
    first = [candidate(text) for text in (BASE, POEM, DERIVATIVE)]
    second = [candidate(text, 1) for text in (WITH_CONSTRAINT, POEM_NEAR_COPY, OTHER_CONSTRAINT, "Name a river.")]
    uninterrupted = Deduplicator()
    kept_first = instructions(uninterrupted.filter(first))
    resumed = Deduplicator()
    resumed.remember(kept_first)  # what the rerun reads back from the shards
    assert instructions(resumed.filter(second)) == instructions(uninterrupted.filter(second))


def test_minhash_shingles_do_not_depend_on_the_process():
    """Python's `hash` is salted per process: the shingles must not be, or two ranks would disagree."""
    code = (
        "from instrl_trl.generation.filters import MinHashIndex; "
        "print(MinHashIndex(0.8).shingles('Name three rivers of Europe.').tolist())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert np.array_equal(
        np.array(json.loads(outputs.pop())), MinHashIndex(0.8).shingles("Name three rivers of Europe.")
    )


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="`dedup_method` must be one of minhash, embedding"):
        Deduplicator("rouge")
