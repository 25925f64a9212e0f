"""
What a user of the endpoint backend sees, checked with real `instrl-trl generate` processes against the fake server
(`openai_server.py`, on 127.0.0.1): huggingface_hub reads `HF_HUB_OFFLINE` and the token at import, so only a fresh
process with its own environment tests them honestly.
"""

import json
import os
import subprocess

import pytest

from instrl_trl.backends.cache import ResponseCache
from tests.backends.openai_server import OpenAIServer
from tests.cli.test_run_failures import done_seeds, generate_command, new_words_responder, rows


pytestmark = pytest.mark.slow

HUB_TOKEN = "hf_hubtoken" + "Qx5vR2nK" * 3


def run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, **env})


@pytest.mark.timeout(600)
def test_empty_answers_stop_generate_and_the_same_command_writes_the_rows_once_the_server_answers(tmp_path):
    output_dir = tmp_path / "dataset"
    with OpenAIServer(responder=lambda messages: "") as server:
        command = generate_command("uniform", output_dir, server)
        failed = run(command)
        assert failed.returncode != 0
        message = failed.stderr.strip().splitlines()[-1]
        assert "The rewriter failed" in message and "last error: empty answer" in message, failed.stderr[-3000:]
        assert server.base_url in message and "run the same command again" in message
        assert done_seeds(output_dir) == set() and rows(output_dir) == []
        with ResponseCache(output_dir / "response_cache.sqlite") as cache:
            assert len(cache) == 0
        # Every empty answer was asked again once (`max_retries: 1`)
        assert server.requests and len(server.requests) % 2 == 0

        server.state.responder = new_words_responder()  # the server is fixed
        fixed = run(command)
        assert fixed.returncode == 0, fixed.stderr[-3000:]
        assert done_seeds(output_dir) == {0, 1, 2, 3}
        assert rows(output_dir)


@pytest.mark.timeout(400)
def test_a_reasoning_model_that_never_answers_stops_generate_naming_the_fix(tmp_path):
    # Every answer is thinking cut at the length limit: a retry would think as long, so none is asked again
    output_dir = tmp_path / "dataset"
    with OpenAIServer(responder=lambda messages: "<think>Okay, the user wants me to rewrite") as server:
        failed = run(generate_command("uniform", output_dir, server))
        bodies = [json.dumps(request.body, sort_keys=True) for request in server.requests]
    assert failed.returncode != 0
    message = failed.stderr.strip().splitlines()[-1]
    assert "ReasoningWithoutAnswer" in message and "`max_tokens` for an endpoint" in message, failed.stderr[-3000:]
    assert "enable_thinking: false" in message
    # The server is up and answering: the message does not send the user to check that it is reachable
    assert "running and reachable" not in message
    assert bodies and len(set(bodies)) == len(bodies)
    assert done_seeds(output_dir) == set() and rows(output_dir) == []


@pytest.mark.timeout(400)
def test_generate_reaches_a_local_server_under_hf_hub_offline_and_sends_it_no_token(tmp_path):
    output_dir = tmp_path / "dataset"
    with OpenAIServer(responder=new_words_responder()) as server:
        result = run(generate_command("uniform", output_dir, server), HF_HUB_OFFLINE="1", HF_TOKEN=HUB_TOKEN)
        assert result.returncode == 0, result.stderr[-3000:]
        assert done_seeds(output_dir) == {0, 1, 2, 3} and rows(output_dir)
        assert server.requests
        assert all("authorization" not in request.headers for request in server.requests)
        assert not any(HUB_TOKEN in str(request.headers) for request in server.requests)
