"""llama.cpp's requests and server settings, without a server (the real server: `test_llamacpp_serve.py`)."""

import sys

import pytest

from instrl_trl.backends.endpoint import EndpointGenerator
from instrl_trl.backends.llamacpp import LlamaCppServer, llamacpp_request_kwargs
from instrl_trl.backends.verdicts import CHOICE_MODES_BY_SERVER, VERDICTS, choice_grammar, choice_request_kwargs
from instrl_trl.models import builtin as models


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_choice_verdicts_send_a_grammar_not_tgi_regex():
    kwargs = choice_request_kwargs("choice", "llamacpp", VERDICTS)
    assert kwargs["extra_body"] == {"grammar": 'root ::= "Not Equal" | "Equal"'}
    assert "response_format" not in kwargs  # llama.cpp answers TGI's regex form with a 400
    assert kwargs["temperature"] == 0.0 and kwargs["logprobs"] is True
    assert kwargs["max_tokens"] == len("Not Equal") + 1  # a token per character at worst
    assert CHOICE_MODES_BY_SERVER["llamacpp"] == ("choice", "logprobs")
    # The logprobs mode asks every server the same
    logprobs = choice_request_kwargs("logprobs", "llamacpp", VERDICTS)
    assert logprobs == choice_request_kwargs("logprobs", "vllm", VERDICTS)


def test_choice_grammar_escapes_quotes_backslashes_and_newlines():
    assert choice_grammar(['say "hi"', "a\\b", "two\nlines"]) == r'root ::= "say \"hi\"" | "a\\b" | "two\nlines"'


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}},  # OpenAI's form
        {"type": "json", "value": SCHEMA},  # TGI's
        {"type": "json_object", "schema": SCHEMA},  # llama.cpp's own
    ],
)
def test_json_schema_moves_to_the_field_llamacpp_reads(response_format):
    kwargs = llamacpp_request_kwargs({"max_tokens": 9, "response_format": response_format, "extra_body": {"top_k": 5}})
    assert kwargs == {"max_tokens": 9, "extra_body": {"top_k": 5, "json_schema": SCHEMA}}


def test_other_requests_pass_through_and_regex_fails_early():
    plain = {"max_tokens": 9, "temperature": 0.7}
    assert llamacpp_request_kwargs(plain) is plain
    assert llamacpp_request_kwargs({"response_format": {"type": "json_object"}}) == {
        "response_format": {"type": "json_object"}
    }
    regex = {"response_format": {"type": "regex", "value": "a|b"}}
    with pytest.raises(ValueError, match=r"`generation_kwargs.response_format` has type 'regex'.*grammar"):
        EndpointGenerator("m", base_url="http://127.0.0.1:1/v1", server="llamacpp", generation_kwargs=regex)
    # Other servers take it
    EndpointGenerator("m", base_url="http://127.0.0.1:1/v1", server="tgi", generation_kwargs=regex)


def test_endpoint_rewrites_requests_for_llamacpp_only():
    schema_format = {"type": "json_schema", "json_schema": {"schema": SCHEMA}}
    generator = EndpointGenerator(
        "m",
        base_url="http://127.0.0.1:1/v1",
        server="llamacpp",
        generation_kwargs={"response_format": schema_format, "temperature": 0.7},
    )
    kwargs = generator.request_kwargs({}, seed=3)
    assert kwargs["extra_body"] == {"json_schema": SCHEMA} and "response_format" not in kwargs
    assert kwargs["seed"] == 3  # llama.cpp honours the sampling seed as sent
    greedy = generator.request_kwargs({"temperature": 0.0})
    assert greedy["extra_body"] == {"json_schema": SCHEMA}  # greedy requests are rewritten too
    assert generator.cache_identity()["server"] == "llamacpp"  # its requests differ from another server's
    vllm = EndpointGenerator("m", base_url="http://127.0.0.1:1/v1", server="vllm")
    assert vllm.request_kwargs({"response_format": schema_format})["response_format"] == schema_format


def test_server_settings_fail_before_starting(monkeypatch, tmp_path):
    monkeypatch.setitem(models.GGUF_FILES, models.SMOLLM2_NAME, lambda: (tmp_path / "wheel.gguf", "9.9"))
    server = LlamaCppServer(models.SMOLLM2_NAME, port=0, threads=3)
    assert server.model_path == tmp_path / "wheel.gguf" and not server.running
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert LlamaCppServer(models.SMOLLM2_NAME, host="0.0.0.0", port=81).base_url == "http://127.0.0.1:81/v1"
    for kwargs, field in [({"parallel": 0}, "parallel"), ({"port": -1}, "port"), ({"threads": 0}, "threads")]:
        with pytest.raises(ValueError, match=f"`{field}` must be at least"):
            LlamaCppServer(models.SMOLLM2_NAME, **kwargs)
    with pytest.raises(ValueError, match="neither one of our model names"):
        LlamaCppServer(models.TINY_CHAT_NAME)


def test_missing_wheel_names_the_pip_package(monkeypatch, tmp_path):
    monkeypatch.setitem(models.GGUF_FILES, models.SMOLLM2_NAME, lambda: (tmp_path / "wheel.gguf", "9.9"))
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` fail
    with pytest.raises(ImportError, match=r"`xllamacpp` package: `pip install 'instrl-trl\[llamacpp\]'"):
        LlamaCppServer(models.SMOLLM2_NAME, port=0).start()


def test_a_file_llamacpp_cannot_read_fails_with_the_cause(tmp_path):
    pytest.importorskip("xllamacpp")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(RuntimeError, match="did not start on .*broken.gguf.*not a GGUF model"):
        LlamaCppServer(str(bad), port=0, threads=1, parallel=1).start()
