"""
Requests per second of the endpoint backend against a local OpenAI-compatible server that takes a fixed time per
request, sent one at a time and then `--max_concurrency` at a time. The server is the tests' fault-injection server
on 127.0.0.1; nothing leaves the machine. Printed last: the ratio concurrent / sequential (target >= 10x at 16).

    python benchmarks/endpoint_throughput.py [--latency 0.1] [--max_concurrency 16]
"""

import argparse
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for `tests.backends.openai_server`
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from instrl_trl.backends.endpoint import EndpointGenerator
from tests.backends.openai_server import OpenAIServer


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

    with OpenAIServer(latency=cli.latency) as server:
        requests_per_second(server.base_url, 4, 4)  # warm-up: open connections, import lazily loaded modules
        sequential = requests_per_second(server.base_url, cli.num_sequential, 1)
        concurrent = requests_per_second(server.base_url, cli.num_concurrent, cli.max_concurrency)

    print(f"server latency: {cli.latency:.2f} s per request")  # noqa: T201
    print(f"concurrency 1: {sequential:.1f} requests/s ({cli.num_sequential} requests)")  # noqa: T201
    print(f"concurrency {cli.max_concurrency}: {concurrent:.1f} requests/s ({cli.num_concurrent} requests)")  # noqa: T201
    print(f"concurrency {cli.max_concurrency} / concurrency 1: {concurrent / sequential:.1f}x")  # noqa: T201


if __name__ == "__main__":
    main()
