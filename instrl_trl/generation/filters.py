"""Dropping duplicate instructions: exact (normalized text) and near (sentence-embedding similarity)."""

import hashlib
import re

import torch

from ..embeddings import SentenceEmbedder
from .evolve import Candidate


def _normalized_hash(text: str) -> str:
    return hashlib.sha256(re.sub(r"\W+", " ", text.lower()).strip().encode()).hexdigest()


class Deduplicator:
    r"""
    Keeps the first of every group of duplicate instructions, over the whole run.

    Args:
        threshold (`float`, *optional*, defaults to `0.95`):
            Cosine similarity at or above which two instructions are near-duplicates; `1.0` checks exact duplicates
            only (and loads no embedding model).
        embedder ([`SentenceEmbedder`], *optional*):
            Embeds instructions; the packaged all-MiniLM-L6-v2 by default.
    """

    def __init__(self, threshold: float = 0.95, embedder: SentenceEmbedder | None = None):
        self.threshold = threshold
        self._embedder = embedder
        self._hashes: set[str] = set()
        self._embeddings: list[torch.Tensor] = []

    @property
    def uses_embeddings(self) -> bool:
        return self.threshold < 1.0

    @property
    def embedder(self) -> SentenceEmbedder:
        if self._embedder is None:
            self._embedder = SentenceEmbedder()
        return self._embedder

    def remember(self, instructions: list[str]) -> None:
        """Marks instructions already kept (e.g. read back from shards on resume)."""
        self._hashes.update(_normalized_hash(text) for text in instructions)
        if self.uses_embeddings and instructions:
            self._embeddings.append(self.embedder.encode(instructions))

    def is_known(self, instruction: str) -> bool:
        """Whether `instruction` is an exact duplicate (normalized text) of one already kept."""
        return _normalized_hash(instruction) in self._hashes

    def filter(self, candidates: list[Candidate], embeddings: torch.Tensor | None = None) -> list[Candidate]:
        """
        Returns the candidates that duplicate neither an earlier kept one nor an earlier one of the batch.
        `embeddings` (one row per candidate, from `embedder.encode`) may be computed beforehand, e.g. in another
        thread while the candidates' answers are awaited; they are computed here otherwise.
        """
        fresh, fresh_rows = [], []
        for row, candidate in enumerate(candidates):
            digest = _normalized_hash(candidate.instruction)
            if digest not in self._hashes:
                self._hashes.add(digest)
                fresh.append(candidate)
                fresh_rows.append(row)
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
