"""
A small OpenAI-compatible chat-completions server on 127.0.0.1, for testing [`EndpointGenerator`] without a network.

It answers `POST /v1/chat/completions` (and `/chat/completions`) deterministically, and can be told to misbehave:
a scripted queue of faults is consumed one per request, then every request is answered normally. It records every
request and the largest number of requests it had in flight at once.

```python
with OpenAIServer(faults=["429", "drop"], latency=0.1) as server:
    generator = EndpointGenerator("test-model", base_url=server.base_url)
    ...
    assert server.max_in_flight <= 4
```
"""

import hashlib
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


FAULTS = (
    "ok", "slow:<seconds>", "malformed", "null-choice", "bad-usage", "drop", "<status>", "empty", "drip:<seconds>",
    "drip-all:<seconds>", "huge:<characters>", "redirect:<url>", "reasoning-only", "hold",
)  # fmt: skip
# Faults with a number after the colon, and the least it may be
_NUMBERED_FAULTS = {"slow": 0.0, "drip": 0.001, "drip-all": 0.001, "huge": 1.0}
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
SYSTEMONE_PATH = "/v1/systemone"  # `transformers serve`'s verdicts


def _checked(faults: Iterable[str]) -> list[str]:
    faults = list(faults)
    for fault in faults:
        simple = ("ok", "malformed", "null-choice", "bad-usage", "drop", "empty", "reasoning-only", "hold")
        valid = fault in simple or (fault.isdigit() and len(fault) == 3)
        name, _, number = fault.partition(":")
        if name == "redirect":
            valid = number.startswith("http")
        if name in _NUMBERED_FAULTS:
            try:
                valid = float(number) >= _NUMBERED_FAULTS[name]
            except ValueError:
                valid = False
        if not valid:
            raise ValueError(f"Unknown fault {fault!r}. Valid faults: {', '.join(FAULTS)}.")
    return faults


_WORDS = ["budget", "glacier", "lantern", "orchard", "harbor", "census", "violin", "meadow", "quartz", "canyon",
          "ledger", "falcon", "prism", "tundra", "mosaic", "compass", "vineyard", "beacon", "archive",
          "summit"]  # fmt: skip


def evolving(messages: list[dict]) -> str:
    """
    An answer that depends only on the messages (a hash picks its words), so that runs with other timings get the
    same answers: to a rewriter's prompt (one with `#Given Prompt#:`), the given prompt and a clause of three new
    words, which the rules reviewer counts as an information gain; to anything else, a one-sentence answer.
    """
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
    words = [_WORDS[byte % len(_WORDS)] for byte in digest[:3]]
    text = [message["content"] for message in messages if message.get("role") == "user"][-1]
    if "#Given Prompt#:" in text:
        given = text.split("#Given Prompt#:", 1)[1].strip().split("\n\n", 1)[0].strip()
        return f"{given} Mention the {words[0]}, the {words[1]} and the {words[2]}."
    return f"The answer involves the {words[0]}, the {words[1]} and the {words[2]}."


def echo(messages: list[dict]) -> str:
    """The default answer: `"ECHO: "` and the last user message."""
    user_messages = [message["content"] for message in messages if message.get("role") == "user"]
    return "ECHO: " + (user_messages[-1] if user_messages else "")


@dataclass
class RecordedRequest:
    r"""
    One request the server received.

    Parameters:
        path (`str`): the request path.
        headers (`dict[str, str]`): its headers, names lower-cased.
        body (`dict` or `None`): its JSON body (`None` when it was not JSON).
        fault (`str`): how the server answered it (`"ok"` or the fault that was injected).
    """

    path: str
    headers: dict[str, str]
    body: dict | None
    fault: str


@dataclass
class _State:
    faults: deque
    responder: Callable[[list[dict]], str]
    latency: float
    latency_sigma: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    requests: list = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    # (start, end) of each POST, `time.monotonic()`: how busy the server was, as it saw it
    spans: list = field(default_factory=list)
    hang_ups: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # What "hold" answers wait for: `OpenAIServer.release()`
    released: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as TGI and vLLM serve
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's delayed ACK
    # (40 ms on Linux), which would swamp the latency the benchmark sets.
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, format, *args):
        pass  # keep pytest's output clean

    def do_POST(self):
        state = self.server.state
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            fault = state.faults.popleft() if state.faults else "ok"
        start = time.monotonic()
        try:
            self._answer(state, fault)
        finally:
            with state.lock:
                state.in_flight -= 1
                state.spans.append((start, time.monotonic()))

    def _answer(self, state: _State, fault: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with state.lock:
            state.requests.append(
                RecordedRequest(self.path, {key.lower(): value for key, value in self.headers.items()}, body, fault)
            )
        if state.latency:
            with state.lock:
                # log-normal around `latency`, as a continuous-batching server's request times spread
                factor = state.rng.lognormvariate(-(state.latency_sigma**2) / 2, state.latency_sigma)
            time.sleep(state.latency * factor)

        if fault.startswith("redirect:"):
            self.send_response(302)
            self.send_header("Location", fault.split(":", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.split("?")[0] == SYSTEMONE_PATH:
            # The first choice twice as likely as the next, and so on: answers in order, and an order a test can see
            criteria = list(((body or {}).get("questions") or {}).get("answer", {}).get("criteria") or {})
            weights = {choice: len(criteria) - index for index, choice in enumerate(criteria)}
            total = sum(weights.values())
            probabilities = {choice: weight / total for choice, weight in weights.items()}
            return self._send_json(200, {"answers": {"answer": {"probabilities": probabilities}}})
        if self.path.split("?")[0] not in CHAT_PATHS:
            return self._send_json(404, {"error": f"Not found: {self.path}"})
        if fault.startswith("slow:"):
            time.sleep(float(fault.split(":", 1)[1]))
            fault = "ok"
        if fault == "hold":  # answered when the test says so, however long that takes
            state.released.wait(timeout=600)
            fault = "ok"
        if fault.startswith(("drip:", "drip-all:")):
            return self._drip(float(fault.split(":", 1)[1]), with_headers=fault.startswith("drip-all:"))
        if fault == "drop":
            # Close the socket without a status line: the client sees a protocol error.
            self.close_connection = True
            self.connection.close()
            return
        if fault == "malformed":
            return self._send_bytes(200, b'{"choices": [{"message": ', "application/json")
        if fault == "null-choice":  # JSON, but not a chat completion
            return self._send_json(200, {"id": "x", "object": "chat.completion", "created": 0, "choices": [None]})
        if fault.isdigit() and len(fault) == 3:
            return self._send_json(int(fault), {"error": f"injected {fault}"})
        if fault not in ("ok", "empty", "bad-usage", "reasoning-only") and not fault.startswith("huge:"):
            raise ValueError(f"Unknown fault {fault!r}. Valid faults: {', '.join(FAULTS)}.")
        if body is None or not isinstance(body.get("messages"), list):
            return self._send_json(400, {"error": "The body must be JSON with a `messages` list."})

        messages = body["messages"]
        if fault in ("empty", "reasoning-only"):
            text = ""
        elif fault.startswith("huge:"):  # a server that ignores `max_tokens`: words of 4 characters and a space
            text = ("word " * (int(float(fault.split(":", 1)[1])) // 5 + 1))[: int(float(fault.split(":", 1)[1]))]
        else:
            text = state.responder(messages)
        prompt_tokens = sum(len(str(message.get("content", "")).split()) for message in messages)
        self._send_json(
            200,
            {
                "id": f"chatcmpl-{len(state.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model") or "test-model",
                "system_fingerprint": "test",
                "choices": [
                    {
                        "index": 0,
                        # A reasoning model that thought until `max_tokens`, behind a reasoning parser (vLLM)
                        "message": (
                            {"role": "assistant", "content": None, "reasoning_content": "Let me think. " * 40}
                            if fault == "reasoning-only"
                            else {"role": "assistant", "content": text}
                        ),
                        "finish_reason": "length" if fault == "reasoning-only" else "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": "n/a" if fault == "bad-usage" else prompt_tokens,
                    "completion_tokens": len(text.split()),
                    "total_tokens": prompt_tokens + len(text.split()),
                },
            },
        )

    def _drip(self, interval: float, with_headers: bool) -> None:
        """
        A `200` whose body (and, `with_headers`, its status line and headers too) comes one byte every `interval`
        seconds, until the client hangs up.
        """
        content = json.dumps({"choices": [{"message": {"role": "assistant", "content": "drip " * 1000}}]}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(content)}\r\n\r\n"
        try:
            if with_headers:
                content = head.encode() + content
            else:
                self.wfile.write(head.encode())
            for index in range(len(content)):
                self.wfile.write(content[index : index + 1])
                self.wfile.flush()
                time.sleep(interval)
        except (BrokenPipeError, ConnectionResetError):
            with self.server.state.lock:  # the client gave up, as it should
                self.server.state.hang_ups += 1

    def _send_json(self, status: int, payload: dict) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json")

    def _send_bytes(self, status: int, content: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler still sleeping on a "slow" fault must not block shutdown
    state: _State

    def handle_error(self, request, client_address):
        pass  # a client that timed out leaves a broken socket behind; that is the point of the test


class OpenAIServer:
    r"""
    An OpenAI-compatible chat-completions server on `127.0.0.1`, running in a daemon thread.

    Parameters:
        faults (`Iterable[str]`, *optional*):
            How to answer the next requests, one fault per request, in order: `"ok"`, `"slow:<seconds>"` (answer
            after that delay), an HTTP status such as `"429"`, `"500"`, `"503"`, `"401"` or `"404"` (answered with
            that status and a JSON error), `"malformed"` (a `200` whose body is not JSON), `"null-choice"` (JSON whose
            `choices` is `[null]`), `"bad-usage"` (a chat completion whose `prompt_tokens` is `"n/a"`),
            `"redirect:<url>"` (a `302` to that URL), `"drop"` (close the
            connection without answering), `"empty"` (a `200` chat completion whose content is `""`),
            `"drip:<seconds>"` (a `200` whose body comes one byte every that many seconds, for minutes),
            `"drip-all:<seconds>"` (the same from the first byte of the status line),
            `"huge:<characters>"` (a chat completion of that many characters, whatever `max_tokens` says),
            `"reasoning-only"` (a reasoning model's answer cut at `max_tokens` while thinking: `content` null, the
            thinking in `reasoning_content`, `finish_reason` `"length"`), `"hold"` (answer once
            [`~OpenAIServer.release`] is called). Once the queue is empty, every request is answered normally. More
            can be queued with [`~OpenAIServer.add_faults`]. `/v1/systemone` (the verdicts of `transformers serve`)
            is answered with the choices' probabilities in the ratio n : n-1 : ... : 1 (2:1 for two choices).
        responder (`Callable[[list[dict]], str]`, *optional*, defaults to [`echo`]):
            The answer to a list of chat messages.
        latency (`float`, *optional*, defaults to `0.0`):
            Seconds every request waits before it is answered (on average, with `latency_sigma`).
        latency_sigma (`float`, *optional*, defaults to `0.0`):
            Spread of the wait: each request waits `latency` times a log-normal factor of mean 1 and this sigma,
            drawn from a generator seeded with `latency_seed`, so that two servers can answer in other orders.
        latency_seed (`int`, *optional*, defaults to `0`):
            Seed of those draws.
        port (`int`, *optional*, defaults to `0`):
            Port to listen on; `0` takes a free one.
    """

    def __init__(
        self,
        faults: Iterable[str] = (),
        responder: Callable[[list[dict]], str] = echo,
        latency: float = 0.0,
        port: int = 0,
        latency_sigma: float = 0.0,
        latency_seed: int = 0,
    ):
        self.state = _State(faults=deque(_checked(faults)), responder=responder, latency=latency,
                            latency_sigma=latency_sigma, rng=random.Random(latency_seed))  # fmt: skip
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = port

    def start(self) -> Self:
        self._server = _Server(("127.0.0.1", self._port), _Handler)
        self._server.state = self.state
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, what an OpenAI-compatible client takes as `base_url`."""
        if self._server is None:
            raise RuntimeError("The server is not running: use `with OpenAIServer() as server:` or call `start()`.")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_faults(self, faults: Iterable[str]) -> None:
        """Queues more faults, answered after those already queued."""
        with self.state.lock:
            self.state.faults.extend(_checked(faults))

    def release(self) -> None:
        """Answers the requests that a `hold` fault keeps waiting (and any later `hold` at once)."""
        self.state.released.set()

    def reset(self, latency: float | None = None) -> None:
        """Forgets the recorded requests, the queued faults and the in-flight maximum."""
        with self.state.lock:
            self.state.faults.clear()
            self.state.requests.clear()
            self.state.spans.clear()
            self.state.max_in_flight = self.state.in_flight
            if latency is not None:
                self.state.latency = latency

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self.state.lock:
            return list(self.state.requests)

    @property
    def max_in_flight(self) -> int:
        """The largest number of requests the server was handling at once."""
        return self.state.max_in_flight

    def fill(self, slots: int) -> float:
        """How busy the server was: its request-seconds over `slots` x the time from the first request to the last."""
        with self.state.lock:
            spans = list(self.state.spans)
        busy = sum(end - start for start, end in spans)
        return busy / (slots * (max(end for _, end in spans) - min(start for start, _ in spans)))

    @property
    def hang_ups(self) -> int:
        """How many dripping answers ended because the client closed the connection."""
        return self.state.hang_ups


def chat_output(content: str, top: list[tuple[str, float]] | None):
    """A chat completion as `huggingface_hub` parses it, cut at the length limit, with these top log-probabilities."""
    from huggingface_hub import ChatCompletionOutput

    choice = {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": content}}
    if top is not None:
        entries = [{"token": token, "logprob": logprob, "bytes": None} for token, logprob in top]
        choice["logprobs"] = {"content": [{"token": top[0][0], "logprob": top[0][1], "top_logprobs": entries}]}
    return ChatCompletionOutput.parse_obj_as_instance(
        {"id": "x", "created": 0, "model": "m", "system_fingerprint": "", "choices": [choice], "usage": None}
    )
