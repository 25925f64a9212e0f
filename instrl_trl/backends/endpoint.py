"""
Text generation through an HTTP endpoint: a TGI or vLLM server, any OpenAI-compatible `base_url`, or Hugging Face
Inference Providers by model id. The requests that score a verdict, and the reading of their answers, are built in
`verdicts.py`; how one request travels (token, client, deadline, size caps) is `endpoint_transport.py`; what counts
as an answer is `endpoint_answers.py`; which failures are retried and which stop the run is `endpoint_retries.py`.
This module checks the settings, builds each prompt's request and sends the requests concurrently.
"""

import dataclasses
import functools
import inspect
import json
import logging
import os
import random
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from huggingface_hub import InferenceClient, get_token

from ..hub.retry import is_retryable_status
from .base import ChoiceScores, Generation, Prompt, TextGenerator, Usage, prompt_messages
from .endpoint_answers import parse_chat_output, read_generation, token_count
from .endpoint_retries import RequestRetries
from .endpoint_transport import (
    MAX_CHARACTERS_PER_TOKEN,
    EndpointStatusError,
    HubTransport,
    MalformedResponse,
    OpenAICompatibleTransport,
    call_with_deadline,
    choose_token,
    max_response_bytes,
    post_json,
)
from .llamacpp import llamacpp_request_kwargs
from .role_calls import pool_stop_event, server_request
from .verdicts import (
    CHOICE_MODES_BY_SERVER,
    answered_choice,
    check_first_words,
    choice_request_kwargs,
    first_token_probabilities,
    systemone_body,
    systemone_probabilities,
)


# The standard library logger, not accelerate's: a backend also runs outside any accelerate state (generation stage,
# CLI), where accelerate's logger raises, and every process must report the retries of its own queries.
logger = logging.getLogger(__name__)

DEFAULT_GENERATION_KWARGS = {"max_tokens": 512, "temperature": 0.0}
# What serves `base_url`. vLLM, TGI, llama.cpp (and OpenAI) sample when `temperature > 0`; `transformers serve`
# samples only when its own `generation_config` field says so, and ignores `temperature` alone. llama.cpp reads a JSON
# schema from its own field (see `llamacpp.py`).
SERVERS = ("openai", "vllm", "sglang", "tgi", "transformers", "llamacpp")
# Arguments of `chat_completion` that the generator sets itself
_NOT_GENERATION_KWARGS = frozenset({"self", "messages", "model", "stream", "stream_options"})
# The most bytes of a `/v1/systemone` answer read: a probability per choice is a few hundred bytes
_SYSTEMONE_MAX_BYTES = 64 * 1024
# Names other backends use, with what to write instead
_FIXES = {
    "max_new_tokens": "write `max_tokens` (the chat-completions name of the length limit)",
    "max_completion_tokens": "write `max_tokens`, which every OpenAI-compatible server reads (the answer's size cap "
    "and the cost accounting use it)",
    "do_sample": "set `temperature` above 0 to sample (the generator tells the server as it needs)",
    "top_k": "pass server-specific fields in `extra_body`, e.g. `extra_body: {top_k: 50}` for vLLM and TGI",
    "min_p": "pass server-specific fields in `extra_body`, e.g. `extra_body: {min_p: 0.05}` for vLLM",
    "repetition_penalty": "use `frequency_penalty`, or pass server-specific fields in `extra_body`",
    "stop_strings": "write `stop`",
}


class EndpointGenerator(TextGenerator):
    r"""
    A [`TextGenerator`] that sends each prompt as one user message to a chat-completions endpoint: a TGI, vLLM or
    any OpenAI-compatible server at `base_url` (posted with `aiohttp`, see `endpoint_transport.py`), or Hugging Face
    [Inference Providers](https://huggingface.co/docs/inference-providers) by model id (queried with
    [`~huggingface_hub.InferenceClient`]).

    The prompts of one [`~EndpointGenerator.generate`] call are sent concurrently, at most `max_concurrency` at a
    time, and come back in input order. A request that is rate limited (`429`), fails on the server (`5xx`), times
    out, loses its connection or gets an empty answer (`200` with no text) is retried with exponential backoff and
    full jitter; after `max_retries` retries its item is `Generation(None, Usage(failed=True))`, which the caller
    counts as a failed query (never cached). Errors that a retry cannot heal are never retried: another `4xx` (such
    as `400`, or `422` for a request the server's schema rejects), a `200` that is not a chat completion or one far
    larger than `max_tokens` allows fails its item at once; authentication errors (`401`, `403`), an unknown model or
    URL (`404`) and, for Inference Providers, `HF_HUB_OFFLINE=1` raise at once. An explicit `base_url` works under
    `HF_HUB_OFFLINE=1`.

    Each attempt has a wall-clock deadline, `timeout`, for the whole answer: a server that sends it one byte at a
    time is abandoned at the deadline, and the attempt counts as a timeout. An answer longer than `max_tokens`
    tokens can be (more than 16 characters per token) is cut to that length, with one warning per call; one whose
    bytes exceed what `max_tokens` allows is not read further, and fails. A reasoning model's thinking is not its
    answer: the text after the last `</think>` is; an answer that is all thinking (cut inside `<think>`, or only
    `reasoning_content` from a server's reasoning parser) fails at once, naming the fix (`max_tokens`, or thinking
    off).

    The Hub's token (`HF_TOKEN`, or the one of `hf auth login`) goes only to Hugging Face hosts: Inference Providers,
    and a `base_url` on `huggingface.co`, `hf.co`, `*.hf.space` or `*.endpoints.huggingface.cloud` (https), or on
    the Hub of `HF_ENDPOINT`. Any other `base_url` gets the token of `token_env`, or no token at all. The token is
    never logged, never part of an error message and never part of the generator's `repr`.

    Args:
        model (`str`):
            Model id on the Hub (Inference Providers), or the name the server serves it under (TGI, vLLM).
        base_url (`str`, *optional*):
            URL of a TGI, vLLM or OpenAI-compatible server, e.g. `"http://localhost:8000/v1"`; `/v1/chat/completions`
            (or `/chat/completions` after a trailing `/v1`) is appended. When unset, `model` goes to Inference
            Providers.
        provider (`str`, *optional*):
            Inference Provider to route to, e.g. `"together"`; defaults to the Hub's automatic routing. Only without
            `base_url`.
        token_env (`str`, *optional*):
            Name of the environment variable that holds the token for this endpoint, read once here; the token goes
            to `base_url` (or Inference Providers), whatever host it is. When unset, Hugging Face hosts get the Hub's
            token (`HF_TOKEN`, or the one saved by `hf auth login`) and other servers no token. Recipes never hold
            the token.

        > Parameters that control concurrency and retries

        max_concurrency (`int`, *optional*, defaults to `8`):
            Largest number of requests in flight at once.
        timeout (`float`, *optional*, defaults to `60.0`):
            Seconds of wall time one attempt may take, the whole answer included, before it is abandoned and
            retried.
        max_retries (`int`, *optional*, defaults to `5`):
            Retries of a failed request after its first attempt; `0` disables retries.
        backoff_base (`float`, *optional*, defaults to `1.0`), backoff_max (`float`, *optional*, defaults to `30.0`):
            Before retry `n`, wait a uniformly random time in `[0, min(backoff_max, backoff_base * 2 ** (n - 1))]`
            seconds ("full jitter"), or the server's `Retry-After` when it asks for longer (capped at
            `backoff_max`).
        seed (`int`, *optional*, defaults to `0`):
            Seed of the jitter, so that the waits of a run are reproducible. Sampling seeds are the `seed` of
            `generation_kwargs` and the per-prompt `seeds` of [`~EndpointGenerator.generate`].
        sleep (`Callable[[float], None]`, *optional*, defaults to `time.sleep`):
            How to wait between attempts; tests pass a function that records the waits instead.

        > Parameters that control generation

        generation_kwargs (`dict`, *optional*):
            Defaults for [`~huggingface_hub.InferenceClient.chat_completion`] (`max_tokens`, `temperature`, `top_p`,
            `stop`, `seed`, `extra_body`, ...), merged over `{"max_tokens": 512, "temperature": 0.0}`; the keyword
            arguments of a [`~EndpointGenerator.generate`] call override them. Other keys (such as transformers'
            `max_new_tokens`) raise here.
        server (`str`, *optional*, defaults to `"openai"`):
            What serves `base_url`, so that sampling settings mean there what they say: `"openai"` (any
            OpenAI-compatible server), `"vllm"`, `"sglang"` and `"tgi"` sample when `temperature > 0` and honour
            `seed` as sent (`"vllm"` gets `choice` verdicts as `structured_outputs`, which vLLM reads from 0.10.2 on,
            so on an older vLLM use `verdict_mode: logprobs`; `"sglang"` as a `regex`; `"tgi"` as a regex
            `response_format`); `"transformers"` (`transformers serve`) ignores `temperature`
            unless told to sample, so a call with `temperature > 0` also sends
            `extra_body={"generation_config": "{\"do_sample\": true}"}` (unless `extra_body` already has a
            `generation_config`). `"llamacpp"` (llama.cpp's server, e.g. `instrl-trl serve`) gets `choice` verdicts
            as a GBNF `grammar` and a `response_format` JSON schema as its `json_schema` field
            ([`~instrl_trl.backends.llamacpp.llamacpp_request_kwargs`]).

    Example:
    ```python
    >>> generator = EndpointGenerator("Qwen/Qwen2.5-7B-Instruct", base_url="http://localhost:8000/v1")
    >>> generator.generate(["Name a prime number."], max_tokens=8)  # doctest: +SKIP
    [Generation(text='2', usage=Usage(cached=False, failed=False, prompt_tokens=14, completion_tokens=1, ...))]

    ```
    """

    backend = "endpoint"
    max_tokens_key = "max_tokens"

    @property
    def choice_modes(self) -> tuple[str, ...]:
        """The verdict modes `server` offers (see [`~EndpointGenerator.score_choices`])."""
        return CHOICE_MODES_BY_SERVER[self.server]

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        provider: str | None = None,
        token_env: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        seed: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        generation_kwargs: dict | None = None,
        server: str = "openai",
    ):
        if not model:
            raise ValueError("`model` is required: a model id on the Hub, or the name the server serves it under.")
        if base_url is not None and provider is not None:
            raise ValueError(
                f"`base_url` ({base_url!r}) and `provider` ({provider!r}) were both given, but `provider` only routes "
                "requests to Inference Providers. Unset `provider` to query your server, or `base_url` to use "
                "Inference Providers."
            )
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ValueError(f"`base_url` must be an http(s) URL, got {base_url!r}.")
        if server not in SERVERS:
            raise ValueError(f"`server` is {server!r}; valid values: {', '.join(SERVERS)}.")
        self.check_generation_kwargs(generation_kwargs or {})
        if server == "llamacpp":  # a field llama.cpp rejects fails here, before any query
            llamacpp_request_kwargs(generation_kwargs or {})
        if max_concurrency < 1:
            raise ValueError(f"`max_concurrency` must be at least 1, got {max_concurrency}.")
        if max_retries < 0:
            raise ValueError(f"`max_retries` must be 0 or more, got {max_retries}.")
        if timeout <= 0 or backoff_base < 0 or backoff_max < 0:
            raise ValueError(
                f"`timeout` must be positive and `backoff_base`, `backoff_max` non-negative; got timeout={timeout}, "
                f"backoff_base={backoff_base}, backoff_max={backoff_max}."
            )
        if token_env is not None and not os.environ.get(token_env):
            raise ValueError(
                f"`token_env` names the environment variable {token_env!r}, which is not set. Set it to the token of "
                f"{base_url or 'Inference Providers'} (`export {token_env}=...`), or remove `token_env` (then only "
                "Hugging Face hosts get a token: the one of `hf auth login` / `HF_TOKEN`)."
            )

        self.model_name = model
        self.base_url = base_url
        self.provider = provider
        self.token_env = token_env
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.seed = seed
        self.server = server
        self.generation_kwargs = {**DEFAULT_GENERATION_KWARGS, **(generation_kwargs or {})}
        self._rng = random.Random(seed)
        # Why the latest failed query failed, for the error that stops a stage whose endpoint is down
        self.last_error: str | None = None
        # The token lives only in the transport (whose repr omits it): never in an attribute of this object.
        token = choose_token(base_url, token_env)
        self._transport = (
            OpenAICompatibleTransport(base_url, token, timeout)
            if base_url is not None
            else HubTransport(provider, token, timeout)
        )
        self._retries = RequestRetries(
            self.endpoint, model, token_env, self._redact, max_retries, backoff_base, backoff_max, sleep
        )

    @property
    def endpoint(self) -> str:
        """Where requests go, for logs and error messages: `base_url`, or the provider and model."""
        if self.base_url is not None:
            return self.base_url
        return f"Inference Providers ({self.provider or 'auto'}), model {self.model_name!r}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model_name!r}, endpoint={self.endpoint!r}, "
            f"token_env={self.token_env!r}, max_concurrency={self.max_concurrency}, timeout={self.timeout}, "
            f"max_retries={self.max_retries})"
        )

    def cache_identity(self) -> dict:
        """The backend, the model, where it is served and the default generation settings; never the token."""
        where = {"base_url": self.base_url} if self.base_url is not None else {"provider": self.provider or "auto"}
        # Only a server whose requests differ is named, so that caches written before `server` existed stay valid
        server = {"server": self.server} if self.server in ("transformers", "llamacpp") else {}
        return {
            "backend": self.backend,
            "model": self.model_name,
            **where,
            **server,
            "generation_kwargs": dict(sorted(self.generation_kwargs.items())),
        }

    generation_key_fixes = _FIXES
    unknown_generation_key_fix = "pass server-specific fields in `extra_body`"

    @classmethod
    def valid_generation_keys(cls) -> frozenset[str]:
        return _valid_generation_keys()

    def samples(self, generation_kwargs: dict) -> bool:
        """Whether a call samples: `temperature` above 0, or unset (servers then sample at their default)."""
        temperature = {**self.generation_kwargs, **generation_kwargs}.get("temperature")
        return temperature is None or temperature > 0

    def request_kwargs(self, generation_kwargs: dict, seed: int | None = None) -> dict:
        """
        The keyword arguments of `chat_completion` for one prompt: the defaults, `generation_kwargs`, the prompt's
        sampling `seed` (mixed with a `seed` of the settings, when sampling) and what `server` needs to sample.
        """
        kwargs = {**self.generation_kwargs, **generation_kwargs}
        if self.server == "llamacpp":
            kwargs = llamacpp_request_kwargs(kwargs)
        if not self.samples(generation_kwargs):
            return kwargs
        if seed is not None:
            kwargs["seed"] = seed if kwargs.get("seed") is None else zlib.crc32(f"{kwargs['seed']}:{seed}".encode())
        if self.server == "transformers":
            extra_body = dict(kwargs.get("extra_body") or {})
            extra_body.setdefault("generation_config", json.dumps({"do_sample": True}))
            kwargs["extra_body"] = extra_body
        return kwargs

    def generate(self, prompts: list[str], seeds: list[int] | None = None, **generation_kwargs) -> list[Generation]:
        """
        One [`Generation`] per prompt, in order; `Generation(None, Usage(failed=True))` for a prompt whose requests
        all failed. Raises `PermissionError` on `401`/`403`, `ValueError` on `404` and, for Inference Providers,
        `RuntimeError` under `HF_HUB_OFFLINE=1`, without retrying. `seeds` (one per prompt) are sent as each
        request's `seed` when sampling.
        """
        if not prompts:
            return []
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"Got {len(seeds)} `seeds` for {len(prompts)} prompts; pass one seed per prompt.")
        self.check_generation_kwargs(generation_kwargs)
        seeds = seeds if seeds is not None else [None] * len(prompts)
        request_kwargs = [self.request_kwargs(generation_kwargs, seed) for seed in seeds]
        results = self._run_concurrently(
            lambda index, rng, abort: self._generate_one(prompts[index], request_kwargs[index], rng, abort),
            len(prompts),
        )
        generations = [generation for generation, _ in results]
        cut = [generation for generation, was_cut in results if was_cut]
        if cut:
            # One warning per call, not per answer: a server that ignores `max_tokens` ignores it for every prompt
            logger.warning(
                "%d of %d answers from %s were longer than `max_tokens` allows (over %d characters per token) and "
                "were cut to that length. The server does not stop at `max_tokens`: check how it is started (its "
                "maximum length, stop tokens) and the model's chat template.",
                len(cut),
                len(generations),
                self.endpoint,
                MAX_CHARACTERS_PER_TOKEN,
            )
        return generations

    def _run_concurrently(self, work: Callable, num_items: int) -> list:
        """`work(index, rng, abort)` for each item, at most `max_concurrency` at a time, results in order."""
        # One seed per call, drawn here, and one generator per item: the waits do not depend on thread scheduling.
        call_seed = self._rng.getrandbits(64)
        if num_items == 1:  # a pipelined caller's one request: its own thread already waits for it
            return [work(0, random.Random(call_seed), pool_stop_event() or threading.Event())]
        abort = threading.Event()
        num_workers = min(self.max_concurrency, num_items)
        with ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="endpoint") as executor:
            futures = [
                executor.submit(work, index, random.Random(call_seed + index), abort) for index in range(num_items)
            ]
            try:
                return [future.result() for future in futures]
            except BaseException:
                # An auth or config error: the other prompts would fail alike, so stop them rather than retry them.
                abort.set()
                for future in futures:
                    future.cancel()
                raise

    def _generate_one(
        self, prompt: Prompt, kwargs: dict, rng: random.Random, abort: threading.Event
    ) -> tuple[Generation, bool]:
        """The generation of one prompt, and whether its text was cut to the length `max_tokens` allows."""
        start = time.perf_counter()

        def call() -> tuple[Generation, bool]:
            output = self._chat_completion(prompt, kwargs)
            return read_generation(output, kwargs.get("max_tokens"), time.perf_counter() - start)

        result = self._with_retries(call, rng, abort)
        if result is None:
            return Generation(None, Usage(failed=True, seconds=time.perf_counter() - start)), False
        return result

    def _chat_completion(self, prompt: Prompt, kwargs: dict):
        """One attempt's request, read until the attempt's deadline and no further than its answer may be long."""
        with server_request():  # in flight at the server, for how full a pipelined run keeps it (`ServerLoad`)
            return self._transport.chat_completion(
                prompt_messages(prompt),
                self.model_name,
                deadline=time.monotonic() + self.timeout,
                max_bytes=max_response_bytes(kwargs),
                **kwargs,
            )

    def _with_retries(self, call: Callable, rng: random.Random, abort: threading.Event):
        """`call()`, retried as `endpoint_retries.py` says; `None` (and `last_error` set) if no attempt succeeded."""
        result, error = self._retries.call(call, rng, abort)
        if error is not None:
            self.last_error = error
        return result

    def score_choices(self, prompts: list[Prompt], choices: Sequence[str], mode: str) -> list[ChoiceScores]:
        """
        The probability of each of `choices` as the answer to each prompt, the way `mode` says:

        - `logprobs`: a one-token answer with its top log-probabilities; each choice gets the probability of the
          tokens that start its first word (so the choices must start with distinct words), renormalised.
        - `choice`: the server may answer only one of `choices` (vLLM `structured_outputs`, llama.cpp GBNF `grammar`,
          TGI regex grammar); its first token's log-probabilities give the probability when the server returns them,
          else the answer counts as certain.
        - `systemone`: transformers serve's `/v1/systemone` choice question, which returns a probability per option.

        A prompt whose requests all fail, or whose answer matches no choice, gets `probabilities=None` (with
        `usage.failed`). Requests run concurrently and are retried like [`~EndpointGenerator.generate`]'s.
        """
        if mode not in self.choice_modes:
            raise ValueError(
                f"Verdict mode {mode!r} is not offered by server {self.server!r} ({self.endpoint}); it offers "
                f"{', '.join(self.choice_modes)}. Set the role's `server` to what serves `base_url`, or use "
                "`verdict_mode: parse`."
            )
        check_first_words(choices)
        if not prompts:
            return []
        return self._run_concurrently(
            lambda index, rng, abort: self._score_one(prompts[index], list(choices), mode, rng, abort), len(prompts)
        )

    def _score_one(
        self, prompt: Prompt, choices: list[str], mode: str, rng: random.Random, abort: threading.Event
    ) -> ChoiceScores:
        start = time.perf_counter()
        if mode == "systemone":
            call = functools.partial(self._systemone, prompt, choices, start)
        else:
            kwargs = choice_request_kwargs(mode, self.server, choices)

            def call() -> ChoiceScores:
                output = self._chat_completion(prompt, kwargs)
                text, prompt_tokens, completion_tokens = parse_chat_output(output)
                usage = Usage(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    seconds=time.perf_counter() - start,
                )
                try:
                    probabilities = first_token_probabilities(output, choices)
                except ValueError as error:
                    raise MalformedResponse(str(error)) from None
                if probabilities is None and mode == "choice":
                    probabilities = answered_choice(text, choices)
                if not probabilities:
                    usage = dataclasses.replace(usage, failed=True)
                return ChoiceScores(probabilities, text, usage)

        result = self._with_retries(call, rng, abort)
        return result if result is not None else ChoiceScores(None, None, Usage(failed=True))

    def _systemone(self, prompt: Prompt, choices: list[str], start: float) -> ChoiceScores:
        root = self.base_url.rstrip("/").removesuffix("/v1") if self.base_url else ""
        body = systemone_body(self.model_name, prompt, choices)
        try:
            data = call_with_deadline(
                lambda: post_json(
                    f"{root}/v1/systemone", body, self.timeout, _SYSTEMONE_MAX_BYTES, token=self._transport.token
                ),
                self.timeout,
            )
        except EndpointStatusError as error:
            if is_retryable_status(error.status):
                raise
            raise ValueError(
                f"{root}/v1/systemone answered {error.status} for model {self.model_name!r}: "
                f"{self._redact(error.server_message)[:300]}. Check that `transformers serve` (transformers >= 5.24) "
                "serves `base_url`, or use another `verdict_mode`."
            ) from None
        try:
            probabilities = systemone_probabilities(data, choices)
        except ValueError as error:
            raise MalformedResponse(str(error)) from None
        input_tokens = token_count((data.get("usage") or {}).get("input_tokens"), "usage.input_tokens")
        text = choices[probabilities.index(max(probabilities))]
        return ChoiceScores(
            probabilities, text, Usage(prompt_tokens=input_tokens, seconds=time.perf_counter() - start)
        )

    def _redact(self, text: str) -> str:
        """`text` without the tokens, in case a server echoes one back."""
        for token in (self._transport.token, get_token()):
            if token:
                text = text.replace(token, "***")
        return text


def _valid_generation_keys() -> frozenset[str]:
    parameters = inspect.signature(InferenceClient.chat_completion).parameters
    return frozenset(parameters) - _NOT_GENERATION_KWARGS
