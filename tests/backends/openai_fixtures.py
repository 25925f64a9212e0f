"""The `openai_server` fixture, imported by the endpoint tests (`tests/backends/conftest.py` belongs to others)."""

import pytest

from tests.backends.openai_server import OpenAIServer


@pytest.fixture
def openai_server():
    """A fresh [`OpenAIServer`] on 127.0.0.1, stopped after the test; queue faults with `add_faults`."""
    with OpenAIServer() as server:
        yield server
