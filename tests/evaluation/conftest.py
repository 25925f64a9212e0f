import pytest

from tests.backends.tiny_causal_lm import build_tiny_causal_lm


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory) -> str:
    """A tiny random causal LM saved to a folder: answers benchmarks in seconds on a CPU."""
    return build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-causal-lm")))
