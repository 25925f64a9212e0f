"""
Requests per second of the endpoint backend against a local OpenAI-compatible server that takes a fixed time per
request, sent one at a time and then `--max_concurrency` at a time. The server (below: a chat-completions handler
that sleeps, then echoes) runs on 127.0.0.1; nothing leaves the machine. Printed last: the ratio concurrent /
sequential (target >= 10x at 16).

    python benchmarks/endpoint_throughput.py [--latency 0.1] [--max_concurrency 16]
"""

import argparse
import json
import os
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from instrl_trl.backends.endpoint import EndpointGenerator


class _SlowChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as TGI and vLLM serve
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's delayed ACK
    # (40 ms on Linux), which would swamp the latency the benchmark sets.
    disable_nagle_algorithm = True
    latency = 0.0

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        time.sleep(self.latency)
        text = str(body["messages"][-1]["content"])
        usage = {"prompt_tokens": len(text.split()), "completion_tokens": len(text.split())}
        answer = {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model") or "bench-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {**usage, "total_tokens": 2 * usage["prompt_tokens"]},
        }
        content = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


@contextmanager
def slow_chat_server(latency: float):
    """An OpenAI-compatible chat-completions server on 127.0.0.1 that takes `latency` seconds per request."""
    handler = type("Handler", (_SlowChatHandler,), {"latency": latency})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def requests_per_second(base_url: str, num_requests: int, max_concurrency: int) -> float:
    generator = EndpointGenerator("bench-model", base_url=base_url, max_concurrency=max_concurrency, timeout=30.0)
    prompts = [f"prompt {index}" for index in range(num_requests)]
    start = time.perf_counter()
    generations = generator.generate(prompts, max_tokens=8)
    seconds = time.perf_counter() - start
    failures = sum(generation.usage.failed for generation in generations)
    if failures:
        raise RuntimeError(f"{failures}/{num_requests} requests failed; the benchmark needs all of them answered.")
    return num_requests / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="Seconds the server takes per request.")
    parser.add_argument("--max_concurrency", type=int, default=16)
    parser.add_argument("--num_sequential", type=int, default=32, help="Requests sent one at a time.")
    parser.add_argument("--num_concurrent", type=int, default=256, help="Requests sent concurrently.")
    cli = parser.parse_args()

    with slow_chat_server(cli.latency) as base_url:
        requests_per_second(base_url, 4, 4)  # warm-up: open connections, import lazily loaded modules
        sequential = requests_per_second(base_url, cli.num_sequential, 1)
        concurrent = requests_per_second(base_url, cli.num_concurrent, cli.max_concurrency)

    print(f"server latency: {cli.latency:.2f} s per request")  # noqa: T201
    print(f"concurrency 1: {sequential:.1f} requests/s ({cli.num_sequential} requests)")  # noqa: T201
    print(f"concurrency {cli.max_concurrency}: {concurrent:.1f} requests/s ({cli.num_concurrent} requests)")  # noqa: T201
    print(f"concurrency {cli.max_concurrency} / concurrency 1: {concurrent / sequential:.1f}x")  # noqa: T201


if __name__ == "__main__":
    main()
