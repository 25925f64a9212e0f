import pytest

from tests.backends.tiny_causal_lm import build_tiny_causal_lm


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory) -> str:
    """A tiny Llama chat model with a word-level tokenizer trained here on the quickstart seeds; returns its folder."""
    return build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-causal-lm")))


@pytest.fixture(scope="session")
def transformers_serve(tiny_causal_lm, tmp_path_factory):
    """`transformers serve` on 127.0.0.1 with the tiny chat model, for the session; stopped at its end."""
    from tests.backends.serve import TransformersServe

    with TransformersServe(tiny_causal_lm, tmp_path_factory.mktemp("serve") / "serve.log") as server:
        yield server
