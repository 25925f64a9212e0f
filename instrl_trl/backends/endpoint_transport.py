"""
How one chat-completions request goes out and comes back, for [`EndpointGenerator`]: which token it carries, the
client library that sends it, its wall-clock deadline and how much of an answer is read.

- **Tokens.** The Hub's token (`HF_TOKEN`, or the one saved by `hf auth login`) goes only to Hugging Face hosts
  ([`HUB_HOSTS`] over https, and the Hub named by `HF_ENDPOINT`); `token_env` names the variable whose token goes
  to the endpoint, whatever it is; any other `base_url` gets no token at all ([`choose_token`]).
- **Clients.** An explicit `base_url` is an OpenAI-compatible server (vLLM, TGI, SGLang, llama.cpp, `transformers
  serve`, Inference Endpoints): its chat completions are posted with `aiohttp` on one event loop per process
  ([`OpenAICompatibleTransport`], `event_loop.py`), which reads no Hugging Face setting, so `HF_HUB_OFFLINE=1` does not
  stop it. The `openai` client sends the same requests at about 6x the CPU per request (3.1 ms against 0.5 ms,
  measured on 2 cores), which at a few hundred requests in flight is what holds a fast server back. Inference
  Providers (a model id without `base_url`) are queried with [`~huggingface_hub.InferenceClient`], which routes
  them ([`HubTransport`]). Neither retries: [`EndpointGenerator`] has its own retries with backoff.
- **Deadline.** A read timeout does not stop a server that sends one byte every 2 s. Each attempt runs under a
  wall-clock deadline: the request's coroutine is cancelled there, its connection closed; Inference Providers'
  blocking calls are abandoned at it ([`call_with_deadline`]).
- **Size.** A server that ignores `max_tokens` can send megabytes: the bytes read are capped
  ([`max_response_bytes`]) and an answer longer than `max_tokens` tokens can be is cut ([`max_answer_characters`]).
"""

import importlib.metadata
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import aiohttp
from huggingface_hub import ChatCompletionOutput, InferenceClient, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from ..hub.retry import TRANSPORT_ERRORS, http_status, retry_after_seconds
from .event_loop import run_with_session


T = TypeVar("T")

# Hosts that get the Hub's token (over https only), each with its subdomains: the Hub and Inference Providers'
# router (huggingface.co, hf.co), Spaces (*.hf.space) and Inference Endpoints (*.endpoints.huggingface.cloud)
HUB_HOSTS = ("huggingface.co", "hf.co", "hf.space", "endpoints.huggingface.cloud")
# The longest text one token plausibly decodes to: English averages about 4 characters per token, code and other
# languages fewer. More than `max_tokens * 16` characters means the server did not stop at `max_tokens`.
MAX_CHARACTERS_PER_TOKEN = 16
# Bytes of the answer's JSON per token: 16 characters, each at most 6 bytes once JSON-escaped (`\uXXXX`), and, when
# log-probabilities are asked for, each of the `top_logprobs + 1` entries per token at most 256 bytes
_BYTES_PER_CHARACTER = 6
_BYTES_PER_LOGPROB = 256
# Room for everything else in an answer (ids, usage, the server's extra fields)
_ENVELOPE_BYTES = 64 * 1024
# The length limit assumed when a request sets none (`max_tokens: null`): a long context's worth
_UNSET_MAX_TOKENS = 32768
# Bytes read of an error answer, for its message
_ERROR_BYTES = 64 * 1024
# How the requests introduce themselves (a server's logs then say who sent them)
USER_AGENT = f"instrl-trl/{importlib.metadata.version('instrl-trl')} aiohttp/{aiohttp.__version__}"


class EndpointStatusError(Exception):
    r"""
    The server answered with an HTTP error status.

    Args:
        status (`int`): the status.
        server_message (`str`): what the server said, short (may be empty).
        retry_after (`float` or `None`): the server's `Retry-After` in seconds, when it gave one.
    """

    def __init__(self, status: int, server_message: str = "", retry_after: float | None = None):
        super().__init__(f"status {status}")
        self.status = status
        self.server_message = server_message
        self.retry_after = retry_after


class EndpointTimeout(TimeoutError):
    """An attempt got no complete answer within its deadline (retryable, like any timeout)."""


class MalformedResponse(ValueError):
    """The server answered `200` with something that is not a chat completion."""

    # What the user can do about it: a retry cannot
    fix = "Check that `base_url` serves OpenAI-compatible chat completions."


class OversizedResponse(MalformedResponse):
    """The answer is larger than its `max_tokens` allows: the server ignores the length limit."""

    fix = "Check that the server honours `max_tokens` (its maximum length, stop tokens)."


def is_hub_url(url: str) -> bool:
    """Whether `url` is a Hugging Face host (see [`HUB_HOSTS`]) over https, or the Hub `HF_ENDPOINT` names."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    if parsed.scheme == "https" and any(host == hub or host.endswith("." + hub) for hub in HUB_HOSTS):
        return True
    # A private Hub (`HF_ENDPOINT`): the same scheme, host and port exactly, so that a test Hub on 127.0.0.1 does not
    # make every local server a Hub
    hub = urlparse(constants.ENDPOINT)
    return (parsed.scheme, parsed.netloc.lower()) == (hub.scheme, hub.netloc.lower())


def choose_token(base_url: str | None, token_env: str | None) -> str | None:
    r"""
    The token a request to `base_url` carries: the value of the variable `token_env` names, when set (checked by
    the caller); else the Hub's token (`HF_TOKEN` or `hf auth login`) for Inference Providers (`base_url=None`) and
    Hugging Face hosts ([`is_hub_url`]); else none, so that the Hub's token never reaches a third-party server.

    Example:
    ```python
    >>> choose_token("http://127.0.0.1:8000/v1", None) is None
    True

    ```
    """
    if token_env is not None:
        return os.environ.get(token_env) or None
    if base_url is None or is_hub_url(base_url):
        return get_token()
    return None


def max_answer_characters(max_tokens: int | None) -> int:
    """The most characters an answer of at most `max_tokens` tokens may have ([`MAX_CHARACTERS_PER_TOKEN`] each)."""
    return (max_tokens or _UNSET_MAX_TOKENS) * MAX_CHARACTERS_PER_TOKEN


def max_response_bytes(request_kwargs: dict) -> int:
    """The most bytes read of the answer to a request with these `chat_completion` arguments."""
    per_token = MAX_CHARACTERS_PER_TOKEN * _BYTES_PER_CHARACTER
    if request_kwargs.get("logprobs"):
        per_token += (1 + (request_kwargs.get("top_logprobs") or 0)) * _BYTES_PER_LOGPROB
    return _ENVELOPE_BYTES + (request_kwargs.get("max_tokens") or _UNSET_MAX_TOKENS) * per_token


def call_with_deadline(call: Callable[[], T], seconds: float) -> T:
    r"""
    `call()`, run in a thread of its own and abandoned after `seconds` of wall time with [`EndpointTimeout`]. The
    abandoned thread ends by itself and its result is dropped (for [`HubTransport`], whose client blocks: after its
    read timeout for a server that stalls, when the answer ends for one that trickles).
    """
    outcome: list[tuple[bool, Any]] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            outcome.append((False, error))
        finally:
            finished.set()

    # A daemon: an attempt stuck in a read must not keep the process alive at exit
    threading.Thread(target=run, name="endpoint-attempt", daemon=True).start()
    if not finished.wait(seconds):
        raise EndpointTimeout(f"no complete answer within {seconds:g} s (`timeout`)")
    succeeded, value = outcome[0]
    if succeeded:
        return value
    raise value


class OpenAICompatibleTransport:
    r"""
    Chat completions from an OpenAI-compatible `base_url` (vLLM, TGI, SGLang, llama.cpp, `transformers serve`,
    Inference Endpoints), posted with `aiohttp` on the process's HTTP loop (`event_loop.py`): no retries of its own;
    each attempt cancelled at its deadline, its answer read no further than a byte cap.

    It sends what the OpenAI API reference and these servers document: `POST {base_url}/chat/completions` with a
    JSON body (`model`, `messages`, the sampling fields, and `extra_body`'s fields at the top level, as the `openai`
    client sends them) and `Authorization: Bearer <token>` only when there is a token. It reads no `OPENAI_*`
    variable and no Hugging Face setting (`HF_HUB_OFFLINE=1` does not stop it), keeps no cookies and takes a proxy
    from `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` as `urllib` reads them.

    Args:
        base_url (`str`): the server; `/v1` is added unless the URL ends with it.
        token (`str` or `None`): sent as `Authorization: Bearer <token>`; no `Authorization` header when `None`.
        timeout (`float`): seconds to connect and for each read (the deadline of a whole attempt is the caller's).
    """

    def __init__(self, base_url: str, token: str | None, timeout: float):
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else f"{root}/v1"
        self._url = f"{self.base_url}/chat/completions"
        self._token = token
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._proxy = _proxy_for(self._url)

    @property
    def token(self) -> str | None:
        return self._token

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, token={'***' if self._token else None})"

    def chat_completion(
        self, messages: list[dict], model: str, deadline: float, max_bytes: int, **kwargs
    ) -> ChatCompletionOutput:
        """The answer, parsed; the request is cancelled at `deadline` (a `time.monotonic()` value) or `max_bytes`."""
        arguments, extra_body = _openai_arguments(kwargs)
        body = json.dumps({**extra_body, "messages": messages, "model": model, **arguments}).encode()

        async def post(session: aiohttp.ClientSession) -> bytes:
            async with session.post(
                self._url,
                data=body,
                headers=self._headers,
                timeout=self._client_timeout,
                proxy=self._proxy,
                allow_redirects=False,  # the token goes to `base_url` only, whatever aiohttp's version does
            ) as response:
                if 300 <= response.status < 400:
                    where = response.headers.get("Location", "")
                    raise EndpointStatusError(
                        response.status, f"redirected to {where!r}: set `base_url` to where the server is"
                    )
                if response.status >= 400:
                    message = await _read_capped(response, _ERROR_BYTES, cut=True)
                    raise EndpointStatusError(
                        response.status,
                        _server_message(message),
                        _retry_after(response.headers),
                    )
                return await _read_capped(response, max_bytes)

        try:
            content = run_with_session(post, max(deadline - time.monotonic(), 0.0))
        except TimeoutError as error:  # the deadline (`asyncio.wait_for`), or aiohttp's read and connect timeouts
            if isinstance(error, aiohttp.ServerTimeoutError):
                raise EndpointTimeout(f"{type(error).__name__}: {error}") from None
            raise EndpointTimeout(f"no complete answer within {self._timeout:g} s (`timeout`)") from None
        except aiohttp.ClientError as error:  # connection refused or lost, an answer that is not HTTP
            raise ConnectionError(f"{type(error).__name__}: {error}") from None
        try:
            data = json.loads(content)
        except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError
            raise MalformedResponse(f"the answer is not JSON ({type(error).__name__}: {error})") from None
        if not isinstance(data, dict):
            raise MalformedResponse(f"the answer is JSON {type(data).__name__}, not a chat completion object")
        try:
            return ChatCompletionOutput.parse_obj_as_instance(data)
        except (TypeError, ValueError) as error:  # e.g. `"choices": [null]`
            raise MalformedResponse(f"the answer is not a chat completion ({type(error).__name__}: {error})") from None


class HubTransport:
    r"""
    Chat completions from Inference Providers (a model id, no `base_url`) with [`~huggingface_hub.InferenceClient`],
    its errors turned into this module's, each call abandoned at its deadline. It reads whole answers: only the
    length cut of [`max_answer_characters`] applies. Under `HF_HUB_OFFLINE=1` it raises
    [`~huggingface_hub.errors.OfflineModeIsEnabled`].

    Args:
        provider (`str` or `None`): the provider, `None` for the Hub's automatic routing.
        token (`str` or `None`): the token (`None`: huggingface_hub finds the Hub's).
        timeout (`float`): seconds for each connect and read.
    """

    def __init__(self, provider: str | None, token: str | None, timeout: float):
        self._client = InferenceClient(provider=provider, token=token, timeout=timeout)

    @property
    def token(self) -> str | None:
        return self._client.token

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self._client.provider!r})"

    def chat_completion(
        self, messages: list[dict], model: str, deadline: float, max_bytes: int, **kwargs
    ) -> ChatCompletionOutput:
        try:
            return call_with_deadline(
                lambda: self._client.chat_completion(messages=messages, model=model, **kwargs),
                max(deadline - time.monotonic(), 0.0),
            )
        except EndpointTimeout:
            raise
        except OfflineModeIsEnabled:
            raise  # a `ConnectionError`, but no retry heals it: the caller says how to fix it
        except HfHubHTTPError as error:
            status = http_status(error)
            if status is None:
                raise ConnectionError(f"{type(error).__name__}: {error}") from None
            raise EndpointStatusError(status, error.server_message or "", retry_after_seconds(error)) from None
        except TimeoutError as error:  # InferenceTimeoutError
            raise EndpointTimeout(f"{type(error).__name__}: {error}") from None
        except TRANSPORT_ERRORS as error:
            if "Timeout" in type(error).__name__:
                raise EndpointTimeout(f"{type(error).__name__}: {error}") from None
            raise ConnectionError(f"{type(error).__name__}: {error}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MalformedResponse(f"the answer is not JSON ({type(error).__name__}: {error})") from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Leaves a redirect unfollowed (an `HTTPError` with its 3xx status): urllib would carry `Authorization` along."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_NO_REDIRECTS_OPENER = urllib.request.build_opener(_NoRedirects)


def post_json(url: str, body: dict, timeout: float, max_bytes: int, token: str | None = None) -> dict:
    r"""
    The JSON object a server answers to `body`, POSTed with the standard library (for requests outside chat
    completions, such as `transformers serve`'s `/v1/systemone`), with `token` as a bearer token if given; redirects
    are not followed, so the token goes to `url`'s host only. Raises [`EndpointStatusError`] (also for a redirect),
    `ConnectionError`, `TimeoutError`, or [`MalformedResponse`] (also past `max_bytes`).
    """
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with _NO_REDIRECTS_OPENER.open(request, timeout=timeout) as response:
            content = response.read(max_bytes + 1)
    except urllib.error.HTTPError as error:
        raise EndpointStatusError(error.code, error.read(4096).decode(errors="replace")) from None
    except urllib.error.URLError as error:
        raise ConnectionError(str(error.reason)) from None
    if len(content) > max_bytes:
        raise OversizedResponse(f"the answer of {url} is larger than {max_bytes} bytes")
    try:
        data = json.loads(content)
    except ValueError as error:
        raise MalformedResponse(f"the answer of {url} is not JSON ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"the answer of {url} is JSON {type(data).__name__}, not an object")
    return data


# The arguments of `chat.completions.create` that `InferenceClient.chat_completion` shares; the others (TGI's
# `tool_prompt`) go in the request body as they are
_OPENAI_ARGUMENTS = frozenset(
    {
        "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n", "presence_penalty", "response_format",
        "seed", "stop", "temperature", "tool_choice", "tools", "top_logprobs", "top_p",
    }
)  # fmt: skip


def _openai_arguments(kwargs: dict) -> tuple[dict, dict]:
    extra_body = dict(kwargs.get("extra_body") or {})
    arguments = {}
    for key, value in kwargs.items():
        if key == "extra_body" or value is None:
            continue
        if key in _OPENAI_ARGUMENTS:
            arguments[key] = value
        else:
            extra_body.setdefault(key, value)
    return arguments, extra_body


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int, cut: bool = False) -> bytes:
    """
    The body of `response`, chunk by chunk: past `max_bytes`, cut there (`cut`, for an error's message) or
    [`OversizedResponse`] (an answer larger than its `max_tokens` allows), without reading the rest.
    """
    if not cut and (response.content_length or 0) > max_bytes:
        raise OversizedResponse(f"the answer is larger than {max_bytes} bytes, more than its `max_tokens` allows")
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > max_bytes:
            if cut:
                return bytes(body[:max_bytes])
            raise OversizedResponse(f"the answer is larger than {max_bytes} bytes, more than its `max_tokens` allows")
    return bytes(body)


def _server_message(content: bytes) -> str:
    """What the server said in an error answer: its `error.message` or `error`, or the body as text."""
    text = content.decode(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(body, dict):
        error = body.get("error", body.get("message", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return error if isinstance(error, str) else json.dumps(error)
    return text.strip()


def _proxy_for(url: str) -> str | None:
    """The proxy `HTTP_PROXY`/`HTTPS_PROXY` name for `url`, unless `NO_PROXY` exempts its host (read by `urllib`)."""
    parsed = urlparse(url)
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy is None or urllib.request.proxy_bypass(parsed.hostname or ""):
        return None
    return proxy


def _retry_after(headers) -> float | None:
    try:
        value = headers.get("Retry-After")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
