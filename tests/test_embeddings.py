import doctest
import os
import socket
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

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


def mean_pooled(texts):
    """all-MiniLM-L6-v2 computed by hand with transformers: masked mean of the last hidden states, L2-normalized."""
    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_EMBEDDING_MODEL)
    model = AutoModel.from_pretrained(DEFAULT_EMBEDDING_MODEL).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def test_encode_matches_a_hand_computed_mean_pool(embedder):
    # texts of different lengths, so that padding would change a pooling that ignored the mask
    texts = ["Name a fruit.", "Instruction number 3: summarize the text in two short paragraphs for a child."]
    torch.testing.assert_close(embedder.encode(texts), mean_pooled(texts), rtol=1e-4, atol=1e-5)


def test_encode_is_batch_independent(embedder):
    texts = [f"Instruction number {i}: summarize the text{' carefully' * i}." for i in range(5)]
    small_batches = SentenceEmbedder(batch_size=2)
    small_batches._model = embedder.model  # same weights, different batching and padding
    torch.testing.assert_close(small_batches.encode(texts), embedder.encode(texts), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(small_batches.encode(texts), mean_pooled(texts), rtol=1e-4, atol=1e-5)


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


def test_the_embedder_runs_on_the_gpu_when_there_is_one(monkeypatch):
    # A MiniLM forward costs 20-70 ms per text on a CPU: on a GPU machine the rollouts' novelty reward would wait on it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert SentenceEmbedder().device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert SentenceEmbedder().device == "cuda"
    assert SentenceEmbedder(device="cpu").device == "cpu"  # an explicit device wins
