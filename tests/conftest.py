"""
Test set-up. The Hugging Face clients read their environment at import, so it is set here, before any HF import:
no test may reach the network, and nothing may write to the user's cache.
"""

import os
import tempfile

from tests.hub_server import HubServer, reserve_port  # stdlib only: safe before any HF import


_HF_HOME = tempfile.mkdtemp(prefix="instrl-trl-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
# The local test Hub (tests/hub_server.py): its port is fixed now, as the clients read HF_ENDPOINT at import; the
# `hub_server` fixture starts it there. Until then nothing listens on it, so a stray Hub call fails fast.
_HUB_PORT = reserve_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{_HUB_PORT}"
os.environ["HF_TOKEN"] = "hf_dummy_token_for_the_local_test_hub"  # `whoami` and pushes refuse to run without one
os.environ.pop("HF_HUB_OFFLINE", None)
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


@pytest.fixture(scope="session")
def hub_server():
    """The local test Hub, on the port `HF_ENDPOINT` names, for the whole session."""
    with HubServer().start(_HUB_PORT) as server:
        yield server


@pytest.fixture
def hub(hub_server):
    """The session's Hub, emptied: no repo, no logged request, no pending fault."""
    hub_server.reset()
    return hub_server


@pytest.fixture(scope="session")
def tiny_policy(tiny_backbone, tmp_path_factory) -> str:
    """An (untrained) operation policy over the default operations, saved like a trained one; returns its folder."""
    import torch
    from transformers import AutoTokenizer

    from instrl_trl.environment import STOP_ACTION
    from instrl_trl.operations import build_operation_library
    from instrl_trl.policy import build_policy

    folder = str(tmp_path_factory.mktemp("tiny-policy"))
    torch.manual_seed(0)  # the classification head is new: the same policy in every run
    build_policy(tiny_backbone, [*build_operation_library().names, STOP_ACTION]).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_backbone).save_pretrained(folder)
    return folder
