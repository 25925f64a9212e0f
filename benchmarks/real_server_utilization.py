"""
How busy `generate` keeps a real inference server: llama.cpp's server (the `xllamacpp` wheel, in its own process) on
SmolLM2-135M-Instruct, with `--parallel` slots, serving the rewriter and the expert of
`recipes/smollm2-135m-instruct/generate.yaml` (the recipe a user runs, with the `uniform` policy instead of a trained
one, so that nothing is trained first), pipelined and lock-step (`pipelined: false`) on the same seeds. Each run has
its own response cache: no run is answered from another's.

Two measures of how busy the server was, over each run's LLM phase (from the first poll of the server's `/slots`
that shows a busy slot to the last; a thread polls every `--poll` seconds):
- busy slots: the mean of busy slots / slots, as llama.cpp reports them (and beside it, for a pipelined run, the
  client's own measure that `generate` prints: its requests in flight over `max_concurrency`, from the first request
  to the last answer);
- capacity: the completion tokens per second of the run over those the server reached when the same requests (each
  run's, recorded as the client sent them) are replayed right after it, `--parallel` always in flight, with no
  pipeline, no policy and no cache between them: what the server could do on that work. On a CPU, a server with
  every slot busy does not decode much faster than one with a few (the cores are the limit), so the first measure
  overstates and the second is the one to read; on a GPU they agree more.
Printed per run: both, the requests and completion tokens (its `queries-rank00000.json`), its LLM phase and the
client's CPU per request (this process's CPU time; the server runs in another process, and both share this
machine's cores). Then how many rows two runs share (a pipelined and a lock-step run, and with `--repeats` 2 or more
the two runs of each side: the same recipe twice): llama.cpp's batched decoding rounds differently in another batch,
so a seeded sample can take another token where two runs batched a request with other requests.

Each side runs `--repeats` times, in alternating order, after a short run that is not measured (the first run of a
process also pays for its imports and the server's first batches). Printed last: pipelined / lock-step completion
tokens per second (the mean over its runs, each over its own LLM phase).

    python benchmarks/real_server_utilization.py [--parallel 8] [--num_seeds 32] [--repeats 2] [--threads 2]
"""

import argparse
import json
import os
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Self


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

from server_utilization import load_seeds, start_server  # benchmarks/, the script's folder, is on sys.path


RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "smollm2-135m-instruct" / "generate.yaml"


def serve(parallel: int, threads: int, port_queue) -> None:
    """llama.cpp's server on SmolLM2 (runs in a child process until killed)."""
    from instrl_trl.backends.llamacpp import LlamaCppServer

    server = LlamaCppServer("smollm2-135m-instruct", port=0, parallel=parallel, threads=threads).start()
    port_queue.put(server.port)
    threading.Event().wait()


class SlotMonitor:
    """Polls llama.cpp's `/slots` in a thread: `(time, busy slots)` every `interval` seconds."""

    def __init__(self, base_url: str, interval: float):
        self.url = f"{base_url}/slots"
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            slots = json.loads(urllib.request.urlopen(self.url, timeout=30).read())
            self.samples.append((time.monotonic(), sum(slot["is_processing"] for slot in slots)))
            self._stop.wait(self.interval)

    def llm_phase(self, num_slots: int) -> tuple[float, float]:
        """The LLM phase's length (first to last poll with a busy slot) and its mean busy slots / `num_slots`."""
        busy = [index for index, (_, count) in enumerate(self.samples) if count]
        if not busy:
            raise RuntimeError("The server was never seen busy: no request reached it.")
        phase = self.samples[busy[0] : busy[-1] + 1]
        return phase[-1][0] - phase[0][0], sum(count for _, count in phase) / (num_slots * len(phase))


class RequestRecorder:
    """Records the chat completions the endpoint backend sends (their arguments), while in its block."""

    def __init__(self):
        from instrl_trl.backends.endpoint_transport import OpenAICompatibleTransport

        self.transport_class = OpenAICompatibleTransport
        self.requests: list[tuple] = []

    def __enter__(self) -> Self:
        send = self.send = self.transport_class.chat_completion
        requests = self.requests

        def recorded(transport, messages, model, deadline, max_bytes, **kwargs):
            requests.append((transport, messages, model, max_bytes, kwargs))
            return send(transport, messages, model, deadline, max_bytes, **kwargs)

        self.transport_class.chat_completion = recorded
        return self

    def __exit__(self, *exc_info) -> None:
        self.transport_class.chat_completion = self.send

    def replay(self, parallel: int) -> tuple[float, int]:
        """Sends the recorded requests again, `parallel` at a time: `(seconds, completion tokens)`."""
        from concurrent.futures import ThreadPoolExecutor

        def send(request) -> int:
            transport, messages, model, max_bytes, kwargs = request
            answer = self.send(transport, messages, model, time.monotonic() + 600, max_bytes, **kwargs)
            return answer.usage.completion_tokens

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            tokens = sum(pool.map(send, self.requests))
        return time.monotonic() - start, tokens


def run_generate(base_url: str, parallel: int, num_seeds: int, pipelined: bool, interval: float) -> dict:
    import pyarrow.parquet as pq
    import yaml

    from instrl_trl.backends.accounting import read_queries_file
    from instrl_trl.backends.server_load import least_full
    from instrl_trl.generation import DatasetGenerationConfig, generate_dataset
    from instrl_trl.generation.builder import QUERIES_FILE
    from instrl_trl.generation.shards import list_shards

    recipe = yaml.safe_load(RECIPE.read_text())
    for role in ("rewriter", "expert"):
        recipe[role].update(base_url=f"{base_url}/v1", max_concurrency=parallel)
    with tempfile.TemporaryDirectory() as output_dir:
        recipe.pop("dataset_name")  # a script argument of `instrl-trl generate`; the seeds are given here
        recipe.update(policy="uniform", output_dir=output_dir, pipelined=pipelined)
        config = DatasetGenerationConfig(**recipe)
        cpu = time.process_time()
        with SlotMonitor(base_url, interval) as monitor, RequestRecorder() as recorder:
            summary = generate_dataset(config, load_seeds(num_seeds))
        cpu = time.process_time() - cpu
        with SlotMonitor(base_url, interval):  # polled as during the run: the same load on the server
            replay_seconds, replay_tokens = recorder.replay(parallel)
        usage = read_queries_file(os.path.join(output_dir, QUERIES_FILE.format(rank=0)))
        rows = [
            json.dumps(row, sort_keys=True, default=str)
            for shard in list_shards(output_dir)
            for row in pq.read_table(shard).to_pylist()
        ]
    wall, utilization = monitor.llm_phase(parallel)
    requests = sum(usage[role].paid_queries for role in ("rewriter", "expert"))  # cache hits reach no server
    tokens = sum(usage[role].completion_tokens for role in ("rewriter", "expert"))
    load = least_full(summary.server_loads)  # `None` for a lock-step run: it does not meter its calls
    return {
        "client_fill": None if load is None else load.fill,
        "held_back": None if load is None else load.held_back,
        "utilization": utilization,
        "capacity_tokens_per_second": replay_tokens / replay_seconds,
        "replayed": len(recorder.requests),
        "wall": wall,
        "requests": requests,
        "tokens": tokens,
        "tokens_per_second": tokens / wall,
        "cpu_ms": 1000 * cpu / max(requests, 1),
        "rows": rows,
        "num_rows": summary.num_rows,
    }


def describe(label: str, parallel: int, num_seeds: int, result: dict) -> str:
    client_fill = ""
    if result["client_fill"] is not None:
        held_back = "none free" if result["held_back"] is None else f"{result['held_back']:.2f}"
        client_fill = (
            f" (client's measure {result['client_fill']:.2f}; of its free slot-time, the share while the client's "
            f"loop worked: {held_back})"
        )
    return (
        f"{label:10s} slots={parallel} seeds={num_seeds} requests={result['requests']} "
        f"completion_tokens={result['tokens']} llm_phase={result['wall']:.1f}s "
        f"tokens/s={result['tokens_per_second']:.1f} of {result['capacity_tokens_per_second']:.1f} (replay of its "
        f"{result['replayed']} requests: {result['tokens_per_second'] / result['capacity_tokens_per_second']:.2f}) "
        f"busy slots={result['utilization']:.2f}{client_fill} client_cpu={result['cpu_ms']:.1f} ms/request "
        f"rows={result['num_rows']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parallel", type=int, default=8, help="llama.cpp's slots, and the roles' max_concurrency.")
    parser.add_argument("--num_seeds", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each side, in alternating order.")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="llama.cpp's threads.")
    parser.add_argument("--poll", type=float, default=0.05, help="Seconds between two reads of /slots.")
    args = parser.parse_args()

    server, base_url = start_server(serve, args.parallel, args.threads, timeout=120)
    results = {"pipelined": [], "lock-step": []}
    try:
        # Not measured: the first run of a process also pays for imports and the server's first batches
        run_generate(base_url, args.parallel, 4, False, args.poll)
        for repeat in range(args.repeats):
            for pipelined in (True, False) if repeat % 2 == 0 else (False, True):
                label = "pipelined" if pipelined else "lock-step"
                result = run_generate(base_url, args.parallel, args.num_seeds, pipelined, args.poll)
                results[label].append(result)
                print(describe(label, args.parallel, args.num_seeds, result), flush=True)  # noqa: T201
    finally:
        server.kill()
    pairs = [("pipelined", 0, "lock-step", 0)]
    if args.repeats > 1:
        pairs += [("pipelined", 0, "pipelined", 1), ("lock-step", 0, "lock-step", 1)]
    for first, i, second, j in pairs:
        ours, theirs = results[first][i]["rows"], results[second][j]["rows"]
        shared = len(set(ours) & set(theirs))
        counts = f"{shared} of {len(ours)} and {len(theirs)}"
        print(f"rows shared by {first} run {i + 1} and {second} run {j + 1}: {counts}")  # noqa: T201
    mean = {label: sum(r["tokens_per_second"] for r in runs) / len(runs) for label, runs in results.items()}
    means = f"pipelined {mean['pipelined']:.1f}, lock-step {mean['lock-step']:.1f}"
    print(f"completion tokens/s, mean of {args.repeats} runs: {means}")  # noqa: T201
    print(f"{mean['pipelined'] / mean['lock-step']:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
