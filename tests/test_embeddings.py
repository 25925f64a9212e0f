import doctest
import os
import socket
from pathlib import Path

import pytest
import torch

from instrl_trl import embeddings
from instrl_trl.embeddings import DEFAULT_EMBEDDING_MODEL, SentenceEmbedder


@pytest.fixture(scope="session")
def embedder():
    return SentenceEmbedder()


def test_default_model_is_a_local_folder():
    assert isinstance(DEFAULT_EMBEDDING_MODEL, str)
    assert (Path(DEFAULT_EMBEDDING_MODEL) / "modules.json").is_file()


def test_model_loaded_lazily():
    embedder = SentenceEmbedder()
    assert embedder._model is None


def test_encode(embedder):
    texts = ["Write a poem about the sea.", "Write a poem about the ocean.", "How do I bake bread?"]
    encoded = embedder.encode(texts)
    assert encoded.shape == (3, 384)
    assert encoded.dtype == torch.float32
    assert encoded.device.type == "cpu"
    torch.testing.assert_close(encoded.norm(dim=1), torch.ones(3))
    similarities = encoded @ encoded.T
    assert similarities[0, 1] > similarities[0, 2]


def test_encode_is_deterministic_and_batch_independent(embedder):
    texts = [f"Instruction number {i}: summarize the text." for i in range(5)]
    small_batches = SentenceEmbedder(batch_size=2)
    small_batches._model = embedder.model  # same weights, different batching
    torch.testing.assert_close(embedder.encode(texts), embedder.encode(texts), rtol=0, atol=0)
    torch.testing.assert_close(small_batches.encode(texts), embedder.encode(texts), rtol=1e-5, atol=1e-5)


def test_encode_empty(embedder):
    assert embedder.encode([]).shape == (0, 384)


def test_loading_default_model_makes_no_network_call(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    attempts = []

    def blocked_connect(self, address):
        attempts.append(address)
        raise OSError(f"network access attempted: {address}")

    def blocked_getaddrinfo(host, *args, **kwargs):
        attempts.append(host)
        raise OSError(f"DNS lookup attempted: {host}")

    monkeypatch.setattr(socket.socket, "connect", blocked_connect)
    monkeypatch.setattr(socket, "getaddrinfo", blocked_getaddrinfo)
    assert "HF_HUB_OFFLINE" not in os.environ

    encoded = SentenceEmbedder().encode(["Write a poem about the sea."])

    assert encoded.shape == (1, 384)
    assert attempts == []


def test_docstring_example():
    results = doctest.testmod(embeddings)
    assert results.attempted > 0
    assert results.failed == 0
