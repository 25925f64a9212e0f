import doctest
import json
import logging
import traceback

import pytest

from instrl_trl.backends.base import Generation
from instrl_trl.backends.endpoint import EndpointGenerator
from tests.backends.openai_fixtures import openai_server  # noqa: F401 - a fixture
from tests.backends.openai_server import OpenAIServer, chat_output


FAKE_TOKEN = "hf_testtoken" + "Zq7xK2mP9w" * 3  # recognizable, so that any leak is found
TOKEN_ENV = "INSTRL_TRL_TEST_ENDPOINT_TOKEN"


@pytest.fixture
def token_env(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, FAKE_TOKEN)
    return TOKEN_ENV


def make_generator(fake: OpenAIServer, waits: list | None = None, **kwargs) -> EndpointGenerator:
    """A generator on the `fake` server whose waits between attempts are recorded in `waits` instead of slept."""
    kwargs.setdefault("timeout", 5.0)
    return EndpointGenerator(
        "test-model", base_url=fake.base_url, sleep=(waits if waits is not None else []).append, **kwargs
    )


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert FAKE_TOKEN not in text
        assert FAKE_TOKEN[:20] not in text


def test_generate_returns_answers_in_order_with_usage(openai_server):  # noqa: F811
    generator = make_generator(openai_server, generation_kwargs={"temperature": 0.7, "top_p": 0.9})
    prompts = [f"prompt number {index}" for index in range(6)]
    generations = generator.generate(prompts, max_tokens=16)

    assert [generation.text for generation in generations] == [f"ECHO: {prompt}" for prompt in prompts]
    for generation in generations:
        assert not generation.usage.failed and not generation.usage.cached
        assert generation.usage.prompt_tokens == 3  # the server counts words
        assert generation.usage.completion_tokens == 4
        assert generation.usage.seconds > 0
        assert generation.finish_reason == "stop"  # as the server says
    bodies = [request.body for request in openai_server.requests]
    assert len(bodies) == 6
    assert {request.path for request in openai_server.requests} == {"/v1/chat/completions"}
    for body in bodies:
        assert body["model"] == "test-model"
        assert body["max_tokens"] == 16  # the call's kwargs win over the defaults
        assert body["temperature"] == 0.7 and body["top_p"] == 0.9
        assert body["messages"][0]["role"] == "user"
    assert generator.generate([]) == []


def test_generate_accepts_base_url_ending_in_v1():
    with OpenAIServer(responder=lambda messages: "fixed") as server:
        generator = EndpointGenerator("test-model", base_url=server.base_url + "/v1", timeout=5.0)
        assert generator.generate(["a"])[0].text == "fixed"
        assert server.requests[0].path == "/v1/chat/completions"


@pytest.mark.parametrize("fault", ["429", "500", "503", "drop"])
def test_retryable_fault_is_retried(openai_server, fault, caplog):  # noqa: F811
    openai_server.add_faults([fault, fault])
    waits = []
    generator = make_generator(openai_server, waits)
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
        [generation] = generator.generate(["hello"])

    assert generation.text == "ECHO: hello" and not generation.usage.failed
    assert [request.fault for request in openai_server.requests] == [fault, fault, "ok"]
    assert len(waits) == 2
    retries = [record.getMessage() for record in caplog.records]
    assert len(retries) == 2
    assert all(openai_server.base_url in message and "/6" in message for message in retries)


def test_backoff_is_exponential_with_full_jitter(openai_server):  # noqa: F811
    openai_server.add_faults(["500"] * 6)
    waits = []
    generator = make_generator(openai_server, waits, max_retries=6, backoff_base=0.5, backoff_max=8.0, seed=3)
    assert generator.generate(["x"])[0].text == "ECHO: x"

    caps = [min(8.0, 0.5 * 2**attempt) for attempt in range(6)]  # 0.5, 1, 2, 4, 8, 8
    assert len(waits) == 6
    assert all(0.0 <= wait <= cap for wait, cap in zip(waits, caps, strict=True))
    assert len(set(waits)) == 6 and not any(wait == cap for wait, cap in zip(waits, caps, strict=True))  # jittered
    assert sum(waits[3:]) > sum(waits[:3])  # later waits are drawn from much wider ranges

    # The same seed gives the same waits; another seed, others.
    for seed, same in [(3, True), (4, False)]:
        openai_server.reset()
        openai_server.add_faults(["500"] * 6)
        other_waits = []
        other = make_generator(openai_server, other_waits, max_retries=6, backoff_base=0.5, backoff_max=8.0, seed=seed)
        other.generate(["x"])
        assert (other_waits == waits) is same


def test_gives_up_after_max_retries(openai_server, token_env, caplog):  # noqa: F811
    openai_server.add_faults(["503"] * 3)
    waits = []
    generator = make_generator(openai_server, waits, token_env=token_env, max_retries=2)
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
        [generation] = generator.generate(["doomed"])

    assert generation.text is None
    assert generation.usage.failed and generation.usage.seconds > 0
    assert generation.usage.prompt_tokens == 0 and generation.usage.completion_tokens == 0
    assert len(openai_server.requests) == 3
    assert len(waits) == 2
    messages = [record.getMessage() for record in caplog.records]
    assert ["retrying" in message for message in messages] == [True, True, False]
    assert "attempt 1/3" in messages[0] and "attempt 3/3" in messages[2] and "giving up" in messages[2]
    assert all(openai_server.base_url in message and "503" in message for message in messages)
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {FAKE_TOKEN}"
    assert_no_token(caplog.text)
    # The query's error, which the stage's failure message quotes, says what to check for a failing server
    assert generator.last_error.startswith("status 503") and "its log says why" in generator.last_error
    # Later prompts are served normally once the server recovers.
    assert generator.generate(["fine"])[0].text == "ECHO: fine"


def test_a_server_that_is_not_there_fails_the_query_saying_to_check_it_is_running():
    with OpenAIServer() as server:
        base_url = server.base_url
    # The server is gone: nothing listens on its port now
    generator = EndpointGenerator("test-model", base_url=base_url, max_retries=1, sleep=[].append)
    [generation] = generator.generate(["anyone there?"])
    assert generation.text is None and generation.usage.failed
    assert generator.last_error.startswith("ConnectionError")
    assert generator.last_error.endswith("Check that it is running and reachable")


def test_slow_response_times_out_and_is_retried(openai_server, caplog):  # noqa: F811
    openai_server.add_faults(["slow:2"])
    generator = make_generator(openai_server, timeout=0.3)
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
        [generation] = generator.generate(["patience"])

    assert generation.text == "ECHO: patience"
    assert len(openai_server.requests) == 2
    assert "Timeout" in caplog.records[0].getMessage()


@pytest.mark.parametrize("fault", ["empty", "blank"])
def test_empty_answer_is_a_failure_that_is_retried(fault, caplog):
    # "blank": an answer of whitespace only, from the responder
    faults = ["empty", "empty"] if fault == "empty" else []
    answers = iter(["  \n ", "\t", "fixed"])
    responder = (lambda messages: "fixed") if fault == "empty" else (lambda messages: next(answers))
    with OpenAIServer(faults=faults, responder=responder) as server:
        waits = []
        generator = make_generator(server, waits)
        with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
            [generation] = generator.generate(["hello"])
        assert generation.text == "fixed" and not generation.usage.failed
        assert len(server.requests) == 3 and len(waits) == 2
        assert all("empty answer" in record.getMessage() for record in caplog.records)

        # Every attempt empty: a failed query, which the caller counts (and the cache does not store)
        server.add_faults(["empty"] * 2)
        doomed = make_generator(server, max_retries=1)
        [generation] = doomed.generate(["again"])
    assert generation.text is None and generation.usage.failed
    assert doomed.last_error == (
        "empty answer: the server answered 200 with no text. Check the server's log, and that it serves `model` with "
        "its chat template"
    )


def test_an_answer_blank_as_far_as_max_tokens_allows_is_empty_and_retried(caplog):
    # 16 characters per token are kept of an answer that ignores `max_tokens`: here they are all blank
    answers = iter([" " * 200 + "and text past the limit", "fixed"])
    with OpenAIServer(responder=lambda messages: next(answers)) as server:
        waits = []
        with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
            [generation] = make_generator(server, waits).generate(["hello"], max_tokens=4)
        assert generation.text == "fixed" and not generation.usage.failed
        assert len(server.requests) == 2 and len(waits) == 1
    assert "the length limit keeps are blank" in caplog.text


def test_client_error_other_than_auth_fails_the_item_without_retry(openai_server, caplog):  # noqa: F811
    openai_server.add_faults(["400"])
    generator = make_generator(openai_server)
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
        generations = generator.generate(["too long"])

    assert generations[0].text is None and generations[0].usage.failed
    assert len(openai_server.requests) == 1
    assert "400" in caplog.text
    assert generator.last_error.startswith("status 400") and "The server refused the request" in generator.last_error
    assert "running and reachable" not in generator.last_error


@pytest.mark.parametrize("fault", ["422", "malformed", "null-choice", "bad-usage"])
def test_schema_errors_fail_the_item_without_retry(openai_server, fault, caplog):  # noqa: F811
    openai_server.add_faults([fault])
    waits = []
    generator = make_generator(openai_server, waits)
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.endpoint"):
        [generation] = generator.generate(["hello"])

    assert generation.text is None and generation.usage.failed
    assert len(openai_server.requests) == 1 and waits == []
    assert "a retry cannot fix" in caplog.text


def test_thinking_doctest():
    from instrl_trl.backends import thinking

    assert doctest.testmod(thinking).failed == 0


def test_a_reasoning_models_thinking_is_not_its_answer():
    # A server without a reasoning parser leaves the thinking in `content`; R1-style templates open `<think>` in the
    # prompt, so only the closing tag comes back
    answers = iter(["<think>They want rivers.\nThree will do.</think>\n\nNile, Amazon", "Fine.</think> Volga"])
    with OpenAIServer(responder=lambda messages: next(answers)) as server:
        generations = make_generator(server, max_concurrency=1).generate(["Name rivers.", "One more."])
    assert [generation.text for generation in generations] == ["Nile, Amazon", "Volga"]


@pytest.mark.parametrize("fault", ["reasoning-only", "unclosed-think"])
def test_an_answer_that_is_all_thinking_fails_at_once_saying_how_to_fix_it(fault, caplog):
    # "reasoning-only": a reasoning parser put it all in `reasoning_content`; "unclosed-think": cut inside `<think>`
    faults = ["reasoning-only"] if fault == "reasoning-only" else []
    with OpenAIServer(faults=faults, responder=lambda messages: "<think>Let me count the " + "words " * 50) as server:
        waits = []
        generator = make_generator(server, waits)
        with caplog.at_level(logging.WARNING):
            [generation] = generator.generate(["hello"])
        # A retry would think as long again: one request, no wait, a failed query
        assert generation.text is None and generation.usage.failed
        assert len(server.requests) == 1 and waits == []
    assert "ReasoningWithoutAnswer" in generator.last_error and "enable_thinking: false" in generator.last_error
    assert "`max_tokens` for an endpoint" in caplog.text


def test_offline_mode_stops_inference_providers_at_once_but_not_a_base_url(openai_server, monkeypatch):  # noqa: F811
    from huggingface_hub import constants

    # In-process, the flag huggingface_hub read at import; `test_endpoint_protection.py` sets the variable itself
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    waits = []
    assert make_generator(openai_server, waits).generate(["a"])[0].text == "ECHO: a"
    providers = EndpointGenerator("org/model", provider="together", token_env=None, sleep=waits.append)
    with pytest.raises(RuntimeError, match=r"HF_HUB_OFFLINE=1.*Inference Providers \(together\).*`base_url`"):
        providers.generate(["a", "b"])
    assert waits == []


def test_concurrency_is_bounded():
    with OpenAIServer(latency=0.2) as server:
        generator = make_generator(server, max_concurrency=4)
        prompts = [f"p{index}" for index in range(20)]
        generations = generator.generate(prompts)

        assert [generation.text for generation in generations] == [f"ECHO: {prompt}" for prompt in prompts]
        assert len(server.requests) == 20
        assert 3 <= server.max_in_flight <= 4


@pytest.mark.parametrize("status", ["401", "403"])
def test_auth_error_raises_at_once_without_the_token(openai_server, token_env, status, caplog):  # noqa: F811
    openai_server.add_faults([status])
    generator = make_generator(openai_server, token_env=token_env)
    with caplog.at_level(logging.DEBUG), pytest.raises(PermissionError, match=TOKEN_ENV) as excinfo:
        generator.generate(["secret?"])

    assert len(openai_server.requests) == 1
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {FAKE_TOKEN}"
    message = str(excinfo.value)
    assert openai_server.base_url in message and status in message
    assert_no_token(message, "".join(traceback.format_exception(excinfo.value)), caplog.text)


def test_auth_error_stops_the_other_prompts(openai_server):  # noqa: F811
    openai_server.add_faults(["401"])
    with pytest.raises(PermissionError):
        make_generator(openai_server, max_concurrency=2).generate([f"p{index}" for index in range(20)])
    assert len(openai_server.requests) < 20


def test_auth_error_without_token_env_says_how_to_log_in(openai_server, monkeypatch):  # noqa: F811
    monkeypatch.delenv("HF_TOKEN", raising=False)
    openai_server.add_faults(["401"])
    with pytest.raises(PermissionError, match="hf auth login"):
        make_generator(openai_server).generate(["a"])
    assert "authorization" not in openai_server.requests[0].headers


def test_not_found_raises_at_once_naming_the_endpoint(openai_server, token_env, caplog):  # noqa: F811
    openai_server.add_faults(["404"])
    generator = make_generator(openai_server, token_env=token_env)
    with caplog.at_level(logging.DEBUG), pytest.raises(ValueError, match="404") as excinfo:
        generator.generate(["where?"])

    assert len(openai_server.requests) == 1
    message = str(excinfo.value)
    assert openai_server.base_url in message and "test-model" in message
    assert_no_token(message, "".join(traceback.format_exception(excinfo.value)), caplog.text)


def test_token_is_not_in_repr_or_attributes(token_env):
    generator = EndpointGenerator("test-model", base_url="http://127.0.0.1:1", token_env=token_env)
    assert_no_token(repr(generator), str(vars(generator)), str(generator.cache_identity()))
    assert "test-model" in repr(generator) and TOKEN_ENV in repr(generator)


def test_unset_token_env_fails_at_construction(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ValueError, match=TOKEN_ENV):
        EndpointGenerator("test-model", base_url="http://127.0.0.1:1", token_env=TOKEN_ENV)


def test_cache_identity():
    served = EndpointGenerator("test-model", base_url="http://127.0.0.1:1", generation_kwargs={"temperature": 0.5})
    assert served.cache_identity() == {
        "backend": "endpoint",
        "model": "test-model",
        "base_url": "http://127.0.0.1:1",
        "generation_kwargs": {"max_tokens": 512, "temperature": 0.5},
    }
    routed = EndpointGenerator("org/model", provider="together")
    assert routed.cache_identity()["provider"] == "together" and "base_url" not in routed.cache_identity()
    assert EndpointGenerator("org/model").cache_identity()["provider"] == "auto"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"provider": "together"}, "provider"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_invalid_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EndpointGenerator("test-model", base_url="http://127.0.0.1:1", **kwargs)


def test_generation_dataclass_on_failure_is_what_the_caller_counts(openai_server):  # noqa: F811
    openai_server.add_faults(["500"])
    [generation] = make_generator(openai_server, max_retries=0).generate(["once"])
    assert isinstance(generation, Generation) and generation.usage.failed


def test_seeds_are_sent_when_sampling(openai_server):  # noqa: F811
    generator = make_generator(openai_server, generation_kwargs={"temperature": 0.7})
    generator.generate(["a", "b"], seeds=[3, 4])
    assert sorted(request.body["seed"] for request in openai_server.requests) == [3, 4]
    assert all("generation_config" not in request.body for request in openai_server.requests)
    # A seed of the settings is mixed in, so that another recipe seed gives other samples
    seeded = make_generator(openai_server, generation_kwargs={"temperature": 0.7, "seed": 11})
    seeded.generate(["a"], seeds=[3])
    assert openai_server.requests[-1].body["seed"] not in (3, 11)
    # Greedy: the seeds change nothing, so none is sent
    make_generator(openai_server).generate(["a"], seeds=[3])
    assert "seed" not in openai_server.requests[-1].body


def test_transformers_serve_is_told_to_sample(openai_server):  # noqa: F811
    generator = make_generator(openai_server, server="transformers", generation_kwargs={"temperature": 0.7})
    generator.generate(["a"])
    assert json.loads(openai_server.requests[-1].body["generation_config"]) == {"do_sample": True}
    assert openai_server.requests[-1].body["temperature"] == 0.7
    generator.generate(["a"], temperature=0.0)
    assert "generation_config" not in openai_server.requests[-1].body
    # A `generation_config` of the user's is kept
    own = json.dumps({"do_sample": True, "top_k": 5})
    generator.generate(["a"], extra_body={"generation_config": own})
    assert openai_server.requests[-1].body["generation_config"] == own
    assert generator.cache_identity()["server"] == "transformers"
    assert "server" not in make_generator(openai_server).cache_identity()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"server": "lmdeploy"}, r"`server` is 'lmdeploy'; valid values: openai, vllm, sglang, tgi, transformers, l"),
        ({"generation_kwargs": {"max_new_tokens": 8}}, r"`generation_kwargs.max_new_tokens`.*write `max_tokens`"),
        (
            {"generation_kwargs": {"max_completion_tokens": 8}},
            r"`generation_kwargs.max_completion_tokens`.*write `max_tokens`",
        ),
        ({"generation_kwargs": {"top_k": 8}}, r"`generation_kwargs.top_k`.*`extra_body`"),
    ],
)
def test_bad_settings_raise_before_any_request(openai_server, kwargs, match):  # noqa: F811
    with pytest.raises(ValueError, match=match):
        make_generator(openai_server, **kwargs)
    generator = make_generator(openai_server)
    with pytest.raises(ValueError, match=r"`generation_kwargs.max_new_tokens`"):
        generator.generate(["a"], max_new_tokens=8)
    assert openai_server.requests == []


# Verdict modes


def test_finish_reason_is_the_servers():
    from instrl_trl.backends.endpoint_answers import finish_reason

    assert finish_reason(chat_output("Name three rivers in", None)) == "length"


def test_logprobs_mode_asks_for_one_token_with_its_top_logprobs(openai_server):  # noqa: F811
    generator = make_generator(openai_server)
    assert generator.choice_modes == ("logprobs",)
    (scores,) = generator.score_choices(["Are they equal?"], ("Not Equal", "Equal"), "logprobs")
    body = openai_server.requests[0].body
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"], body["temperature"]) == (1, True, 20, 0.0)
    # The fake server returns no logprobs: the verdict is a counted failure, not a guess
    assert scores.probabilities is None and scores.usage.failed


def test_choice_mode_constrains_the_answer_as_each_server_wants(openai_server):  # noqa: F811
    vllm = make_generator(openai_server, server="vllm")
    vllm.score_choices(["q"], ("Not Equal", "Equal"), "choice")
    # vLLM's field since 0.10.2; 0.12 dropped `guided_choice` and ignores it
    body = openai_server.requests[-1].body
    assert body["structured_outputs"] == {"choice": ["Not Equal", "Equal"]} and "guided_choice" not in body
    tgi = make_generator(openai_server, server="tgi")
    tgi.score_choices(["q"], ("Not Equal", "Equal"), "choice")
    assert openai_server.requests[-1].body["response_format"] == {"type": "regex", "value": "Not Equal|Equal"}
    # SGLang reads a top-level `regex` (what the OpenAI client's `extra_body` puts there); special characters escaped
    sglang = make_generator(openai_server, server="sglang")
    assert sglang.choice_modes == ("choice", "logprobs")
    sglang.score_choices(["q"], ("Yes.", "No (really)"), "choice")
    body = openai_server.requests[-1].body
    assert body["regex"] == r"(Yes\.|No \(really\))" and "response_format" not in body
    with pytest.raises(ValueError, match="Verdict mode 'choice' is not offered by server 'openai'"):
        make_generator(openai_server).score_choices(["q"], ("Not Equal", "Equal"), "choice")
