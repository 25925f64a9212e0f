"""
Test set-up. The Hugging Face clients read their environment at import, so it is set here, before any HF import:
no test may reach the network, and nothing may write to the user's cache.
"""

import os
import tempfile


_HF_HOME = tempfile.mkdtemp(prefix="instrl-trl-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")  # no Hub server by default: any call fails fast
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["INSTRL_TRL_NLTK_DATA"] = os.path.join(_HF_HOME, "nltk_data")

import pytest  # noqa: E402

from tests.tiny_models import build_tiny_policy_backbone  # noqa: E402


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> str:
    """A tiny BERT with a word-level tokenizer trained here on the quickstart seeds; returns its folder."""
    return build_tiny_policy_backbone(str(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def quickstart_seeds():
    from instrl_trl.data import load_quickstart_seeds

    return load_quickstart_seeds()
