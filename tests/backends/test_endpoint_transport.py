"""
How a request of the endpoint backend travels (`endpoint_transport.py`), checked on the wire against the fake server
(`openai_server.py`, on 127.0.0.1): which token it carries, its wall-clock deadline, and how much of an answer is read.
"""

import logging
import time

import pytest
from huggingface_hub import constants

from instrl_trl.backends.endpoint import EndpointGenerator
from instrl_trl.backends.endpoint_transport import (
    EndpointStatusError,
    _proxy_for,
    choose_token,
    is_hub_url,
    max_answer_characters,
    max_response_bytes,
    post_json,
)
from tests.backends.openai_fixtures import openai_server  # noqa: F401 - a fixture
from tests.backends.openai_server import OpenAIServer, echo


HUB_TOKEN = "hf_hubtoken" + "Vb3nQ8rT" * 3
OTHER_TOKEN = "sk-servertoken" + "Lm4pW7yZ" * 3
TOKEN_ENV = "INSTRL_TRL_TEST_SERVER_TOKEN"


def make_generator(server: OpenAIServer, **kwargs) -> EndpointGenerator:
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("sleep", lambda seconds: None)
    return EndpointGenerator("test-model", base_url=server.base_url, **kwargs)


# Tokens


@pytest.mark.parametrize(
    ("url", "hub"),
    [
        ("https://router.huggingface.co/v1", True),
        ("https://huggingface.co/api", True),
        ("https://hf.co/v1", True),
        ("https://my-space.hf.space/v1", True),
        ("https://abc123.us-east-1.aws.endpoints.huggingface.cloud/v1", True),
        ("http://router.huggingface.co/v1", False),  # never the token in clear text
        ("https://huggingface.co.evil.example/v1", False),
        ("https://nothuggingface.co/v1", False),
        ("https://api.openai.com/v1", False),
        ("http://127.0.0.1:8000/v1", False),
        ("http://localhost:8000/v1", False),
    ],
)
def test_hub_hosts(url, hub):
    assert is_hub_url(url) is hub


def test_the_hub_token_goes_only_to_hub_hosts(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    monkeypatch.setenv(TOKEN_ENV, OTHER_TOKEN)
    assert choose_token("http://127.0.0.1:8000/v1", None) is None
    assert choose_token("https://api.together.xyz/v1", None) is None
    assert choose_token("https://abc.endpoints.huggingface.cloud/v1", None) == HUB_TOKEN
    assert choose_token(None, None) == HUB_TOKEN  # Inference Providers
    # A private Hub (`HF_ENDPOINT`, the local test Hub here) is a Hub host, exactly: not another port of its host
    assert choose_token(f"{constants.ENDPOINT}/v1", None) == HUB_TOKEN
    assert choose_token("http://127.0.0.1:1/v1", None) is None
    # `token_env` names the token of the endpoint, whatever it is
    for url in ("http://127.0.0.1:8000/v1", "https://router.huggingface.co/v1", None):
        assert choose_token(url, TOKEN_ENV) == OTHER_TOKEN


def test_no_token_reaches_a_local_server_unless_token_env_names_one(openai_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    # The openai client would send these to any server; none of them is meant for this one
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-key-not-for-this-server")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-not-for-this-server")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-not-for-this-server")
    assert make_generator(openai_server).generate(["a"])[0].text == "ECHO: a"
    headers = openai_server.requests[-1].headers
    assert "authorization" not in headers
    assert "openai-organization" not in headers and "openai-project" not in headers
    assert not any(secret in str(headers) for secret in (HUB_TOKEN, "sk-openai", "org-not", "proj-not"))

    monkeypatch.setenv(TOKEN_ENV, OTHER_TOKEN)
    assert make_generator(openai_server, token_env=TOKEN_ENV).generate(["b"])[0].text == "ECHO: b"
    assert openai_server.requests[-1].headers["authorization"] == f"Bearer {OTHER_TOKEN}"
    assert HUB_TOKEN not in str(openai_server.requests[-1].headers)


def test_a_proxy_is_taken_from_the_environment_unless_no_proxy_exempts_the_host(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert _proxy_for("http://127.0.0.1:8000/v1/chat/completions") is None
    assert _proxy_for("http://gpu-box.internal:8000/v1/chat/completions") == "http://proxy.example:3128"
    # An https server takes `HTTPS_PROXY`, which is not set here
    assert _proxy_for("https://gpu-box.internal/v1/chat/completions") is None


# The deadline of an attempt


@pytest.mark.timeout(60)  # without a deadline, the test would wait for the whole drip
@pytest.mark.parametrize("fault", ["drip:0.2", "drip-all:0.2"])
def test_a_dripping_server_is_abandoned_at_the_deadline(openai_server, fault, caplog):  # noqa: F811
    # One byte every 0.2 s (of the body, or from the status line on): each read is quick, so only a wall-clock
    # deadline stops it (the answer lasts ~20 minutes)
    openai_server.add_faults([fault])
    generator = make_generator(openai_server, timeout=1.0, max_retries=0)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
        [generation] = generator.generate(["hello"])
    elapsed = time.monotonic() - start
    assert generation.text is None and generation.usage.failed
    assert 1.0 <= elapsed < 1.5, elapsed
    assert "EndpointTimeout" in generator.last_error and "within 1 s" in generator.last_error
    assert generator.last_error.endswith("that the role's `timeout` gives it time to answer")
    assert "EndpointTimeout" in caplog.text
    # The attempt is cancelled at the deadline and its connection closed, even while the status line trickles in:
    # the server's next byte finds the socket gone
    deadline = time.monotonic() + 2.0
    while openai_server.hang_ups == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert openai_server.hang_ups == 1


@pytest.mark.timeout(60)
def test_a_drip_counts_as_a_timeout_and_is_retried(openai_server):  # noqa: F811
    openai_server.add_faults(["drip:0.2"])
    waits = []
    generator = make_generator(openai_server, timeout=1.0, sleep=waits.append)
    start = time.monotonic()
    assert generator.generate(["hello"])[0].text == "ECHO: hello"
    assert time.monotonic() - start < 3.0
    assert [request.fault for request in openai_server.requests] == ["drip:0.2", "ok"] and len(waits) == 1


# The size of an answer


def test_an_answer_far_beyond_max_tokens_is_not_read_and_fails(openai_server, caplog):  # noqa: F811
    # 25 MB of text for `max_tokens=64`: reading stops at the byte cap, a few dozen kB in
    openai_server.add_faults(["huge:25000000"])
    waits = []
    generator = make_generator(openai_server, sleep=waits.append)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
        [generation] = generator.generate(["hello"], max_tokens=64)
    assert time.monotonic() - start < 5.0
    assert generation.text is None and generation.usage.failed
    assert len(openai_server.requests) == 1 and waits == []  # the same server would send as much again
    assert f"larger than {max_response_bytes({'max_tokens': 64})} bytes" in generator.last_error
    [warning] = [record.getMessage() for record in caplog.records]
    assert openai_server.base_url in warning and "honours `max_tokens`" in warning


def test_an_answer_longer_than_max_tokens_allows_is_cut_with_one_warning(caplog):
    # 20,000 characters for `max_tokens=512`: within the byte cap, beyond 16 characters per token
    def responder(messages):
        return echo(messages) if messages[-1]["content"] == "d" else "word " * 4000

    with OpenAIServer(responder=responder) as server, caplog.at_level(logging.WARNING, "instrl_trl.backends.endpoint"):
        generations = make_generator(server).generate(["a", "b", "c", "d"], max_tokens=512)
        base_url = server.base_url
    limit = max_answer_characters(512)
    assert limit == 512 * 16
    assert [len(generation.text) for generation in generations[:3]] == [limit] * 3
    assert [generation.finish_reason for generation in generations] == ["length"] * 3 + ["stop"]
    assert generations[3].text == "ECHO: d" and not any(generation.usage.failed for generation in generations)
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith(f"3 of 4 answers from {base_url}") and "cut" in warning


def test_the_byte_cap_leaves_room_for_log_probabilities():
    assert max_response_bytes({"max_tokens": 1, "logprobs": True, "top_logprobs": 20}) > max_response_bytes(
        {"max_tokens": 1}
    )
    assert max_response_bytes({"max_tokens": None}) == max_response_bytes({})


def test_post_json_sends_the_endpoint_token_and_follows_no_redirect():
    # `transformers serve --api-key` asks `/v1/systemone` for the token too; a redirect must not carry it elsewhere
    with OpenAIServer() as elsewhere, OpenAIServer() as server:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        url = f"{server.base_url}/chat/completions"
        assert post_json(url, body, timeout=5, max_bytes=10_000, token="secret")["choices"][0]["message"]["content"]
        post_json(url, body, timeout=5, max_bytes=10_000)
        server.add_faults([f"redirect:{elsewhere.base_url}/chat/completions"])
        with pytest.raises(EndpointStatusError) as excinfo:
            post_json(url, body, timeout=5, max_bytes=10_000, token="secret")
        assert excinfo.value.status == 302
        headers, sent_on = [request.headers for request in server.requests], elsewhere.requests
    assert headers[0]["authorization"] == "Bearer secret" and "authorization" not in headers[1]
    assert sent_on == []


def test_systemone_verdicts_carry_the_endpoint_token(monkeypatch):
    monkeypatch.setenv("INSTRL_TRL_TEST_SERVE_KEY", "serve-key")
    with OpenAIServer() as server:
        generator = EndpointGenerator(
            "m", base_url=server.base_url, server="transformers", token_env="INSTRL_TRL_TEST_SERVE_KEY", timeout=5
        )
        [scores] = generator.score_choices(["Same?"], ("Not Equal", "Equal"), "systemone")
        [request] = server.requests
    assert request.path == "/v1/systemone"
    assert scores.probabilities == pytest.approx((2 / 3, 1 / 3))
    assert request.headers["authorization"] == "Bearer serve-key"


def test_a_redirected_chat_completion_fails_without_following_it(monkeypatch):
    monkeypatch.setenv("INSTRL_TRL_TEST_SERVE_KEY", "serve-key")
    with OpenAIServer() as elsewhere, OpenAIServer() as server:
        server.add_faults([f"redirect:{elsewhere.base_url}/chat/completions"])
        generator = EndpointGenerator(
            "m", base_url=server.base_url, token_env="INSTRL_TRL_TEST_SERVE_KEY", timeout=5, max_retries=3
        )
        [generation] = generator.generate(["hello"])
        num_requests, sent_on, elsewhere_url = len(server.requests), elsewhere.requests, elsewhere.base_url
    assert generation.text is None and generation.usage.failed
    assert num_requests == 1 and sent_on == []  # not retried, and not sent on
    assert "302" in generator.last_error and f"redirected to '{elsewhere_url}" in generator.last_error
