"""
Dropping duplicate instructions: exact (normalized text), and near-duplicates by one of two methods:

- `minhash` (the default): word 3-gram shingles, MinHash signatures and LSH bands, as in datatrove's and NeMo
  Curator's fuzzy deduplication; the pairs the bands propose are checked by their exact Jaccard similarity. About
  0.1 ms of CPU per instruction, so a client on two cores keeps up with a server answering hundreds of requests a
  second.
- `embedding`: cosine similarity of sentence embeddings (all-MiniLM-L6-v2 by default), which also catches
  paraphrases with few words in common, at 20-70 ms of CPU per instruction on a CPU (a 6-layer transformer forward):
  on a two-core client it, not the server, sets the pace above ~30-50 rows per second.

Both decide in the order instructions arrive, so the kept set does not depend on how they are batched.
"""

import hashlib
import re

import numpy as np
import torch

from ..embeddings import SentenceEmbedder
from .evolve import Candidate


DEDUP_METHODS = ("minhash", "embedding")
# Similarity at or above which two instructions are near-duplicates, per method: the Jaccard similarity of word
# 3-gram sets (an instruction with a 6-word constraint added to a 32-word one scores 0.83, a 10-word one 0.75), or
# the cosine similarity of MiniLM embeddings
DEFAULT_DEDUP_THRESHOLDS = {"minhash": 0.8, "embedding": 0.95}


def _normalized_words(text: str) -> list[str]:
    return re.sub(r"\W+", " ", text.lower()).split()


def _normalized_hash(text: str) -> str:
    return hashlib.sha256(" ".join(_normalized_words(text)).encode()).hexdigest()


class MinHashIndex:
    r"""
    Finds, among the instructions added so far, one whose word n-gram set has a Jaccard similarity at or above
    `threshold` with a new instruction's.

    Each instruction's shingles (its normalized word n-grams; the whole text when it has fewer than `ngram` words) are
    hashed with BLAKE2b to 32 bits, so the results are the same in every process. Its MinHash signature has
    `num_bands * rows_per_band` values; two instructions sharing all the values of one band are compared by their exact
    Jaccard similarity. With 32 bands of 4 rows, a pair at Jaccard 0.8 shares a band with probability 1 - 1e-9, a pair
    at 0.3 with probability 0.23 (then the exact check rejects it).

    Args:
        threshold (`float`):
            Jaccard similarity at or above which an instruction is a near-duplicate.
        ngram (`int`, *optional*, defaults to `3`):
            Words per shingle.
        num_bands (`int`, *optional*, defaults to `32`), rows_per_band (`int`, *optional*, defaults to `4`):
            The LSH bands.
    """

    _PRIME = np.uint64((1 << 61) - 1)

    def __init__(self, threshold: float, ngram: int = 3, num_bands: int = 32, rows_per_band: int = 4):
        self.threshold = threshold
        self.ngram = ngram
        self.num_bands = num_bands
        self.rows_per_band = rows_per_band
        # (a * h + b) mod 2**64 mod (2**61 - 1) with a, b below the prime, as in datatrove: the multiplication wraps
        # around, which mixes the bits (with no wrap, the order of a * h would follow h's and the hashes agree)
        rng = np.random.default_rng(0)
        num_hashes = num_bands * rows_per_band
        self._a = rng.integers(1, int(self._PRIME), size=num_hashes, dtype=np.uint64)
        self._b = rng.integers(0, int(self._PRIME), size=num_hashes, dtype=np.uint64)
        self._buckets: dict[tuple[int, bytes], list[int]] = {}
        self._shingles: list[np.ndarray] = []

    def shingles(self, text: str) -> np.ndarray:
        """The sorted, distinct 32-bit hashes of `text`'s word n-grams."""
        words = _normalized_words(text)
        grams = [" ".join(words[i : i + self.ngram]) for i in range(max(1, len(words) - self.ngram + 1))]
        hashes = {int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest(), "little") for gram in grams}
        return np.array(sorted(hashes), dtype=np.uint64)

    def _band_keys(self, shingles: np.ndarray) -> list[tuple[int, bytes]]:
        signature = ((shingles[:, None] * self._a + self._b) % self._PRIME).min(axis=0)
        bands = signature.reshape(self.num_bands, self.rows_per_band)
        return [(band, bands[band].tobytes()) for band in range(self.num_bands)]

    def add(self, text: str) -> None:
        """Adds `text`, near-duplicate or not (rows already kept, read back on resume)."""
        shingles = self.shingles(text)
        self._add(shingles, self._band_keys(shingles))

    def add_if_new(self, text: str) -> bool:
        """Adds `text` and returns `True` unless it is a near-duplicate of a text added before (then adds nothing)."""
        shingles = self.shingles(text)
        keys = self._band_keys(shingles)
        proposed = {index for key in keys for index in self._buckets.get(key, ())}
        for index in sorted(proposed):
            other = self._shingles[index]
            shared = len(np.intersect1d(shingles, other, assume_unique=True))
            if shared / (len(shingles) + len(other) - shared) >= self.threshold:
                return False
        self._add(shingles, keys)
        return True

    def _add(self, shingles: np.ndarray, keys: list[tuple[int, bytes]]) -> None:
        index = len(self._shingles)
        self._shingles.append(shingles)
        for key in keys:
            self._buckets.setdefault(key, []).append(index)


class Deduplicator:
    r"""
    Keeps the first of every group of duplicate instructions, over the whole run.

    Args:
        method (`str`, *optional*, defaults to `"minhash"`):
            How near-duplicates are found: `"minhash"` (shared word 3-grams) or `"embedding"` (sentence-embedding
            cosine); see the module's docstring for what each costs.
        threshold (`float` or `None`, *optional*, defaults to `None`):
            Similarity at or above which two instructions are near-duplicates (`DEFAULT_DEDUP_THRESHOLDS[method]`
            when `None`); `1.0` checks exact duplicates only (and loads no embedding model).
        embedder ([`SentenceEmbedder`], *optional*):
            Embeds instructions for the `"embedding"` method; the packaged all-MiniLM-L6-v2 by default.
    """

    def __init__(
        self, method: str = "minhash", threshold: float | None = None, embedder: SentenceEmbedder | None = None
    ):
        if method not in DEDUP_METHODS:
            raise ValueError(f"`dedup_method` must be one of {', '.join(DEDUP_METHODS)}, got {method!r}.")
        self.method = method
        self.threshold = DEFAULT_DEDUP_THRESHOLDS[method] if threshold is None else threshold
        self._embedder = embedder
        self._hashes: set[str] = set()
        self._embeddings: list[torch.Tensor] = []
        self._minhash = MinHashIndex(self.threshold) if method == "minhash" and self.threshold < 1.0 else None

    @property
    def uses_embeddings(self) -> bool:
        return self.method == "embedding" and self.threshold < 1.0

    @property
    def embedder(self) -> SentenceEmbedder:
        if self._embedder is None:
            self._embedder = SentenceEmbedder()
        return self._embedder

    def remember(self, instructions: list[str]) -> None:
        """Marks instructions already kept (e.g. read back from shards on resume)."""
        self._hashes.update(_normalized_hash(text) for text in instructions)
        if self._minhash is not None:
            for text in instructions:
                self._minhash.add(text)
        if self.uses_embeddings and instructions:
            self._embeddings.append(self.embedder.encode(instructions))

    def is_known(self, instruction: str) -> bool:
        """Whether `instruction` is an exact duplicate (normalized text) of one already kept."""
        return _normalized_hash(instruction) in self._hashes

    def filter(self, candidates: list[Candidate], embeddings: torch.Tensor | None = None) -> list[Candidate]:
        """
        Returns the candidates that duplicate neither an earlier kept one nor an earlier one of the batch.
        For the `"embedding"` method, `embeddings` (one row per candidate, from `embedder.encode`) may be computed
        beforehand, e.g. in another thread while the candidates' answers are awaited; they are computed here otherwise.
        """
        fresh, fresh_rows = [], []
        for row, candidate in enumerate(candidates):
            digest = _normalized_hash(candidate.instruction)
            if digest not in self._hashes:
                self._hashes.add(digest)
                fresh.append(candidate)
                fresh_rows.append(row)
        if self._minhash is not None:
            return [candidate for candidate in fresh if self._minhash.add_if_new(candidate.instruction)]
        if not self.uses_embeddings or not fresh:
            return fresh
        if embeddings is None:
            embeddings = self.embedder.encode([candidate.instruction for candidate in fresh])
        else:
            embeddings = embeddings[fresh_rows]
        memory = torch.cat(self._embeddings) if self._embeddings else embeddings.new_zeros(0, embeddings.size(1))
        kept, kept_rows = [], []
        for row, candidate in enumerate(fresh):
            previous = torch.cat([memory, embeddings[kept_rows]]) if kept_rows else memory
            if len(previous) and (previous @ embeddings[row]).max().item() >= self.threshold:
                continue
            kept.append(candidate)
            kept_rows.append(row)
        if kept_rows:
            self._embeddings.append(embeddings[kept_rows])
        return kept
