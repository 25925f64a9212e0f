"""
Memory of the generation stage as the dataset grows: how much memory a run that writes ~1k rows and one that writes
~10x more hold above their post-load baseline, same settings (rules backend, near-duplicate filter on, a tiny
policy). Rows stream to parquet shards, so the growth should not scale with the rows (target: a ratio <= 1.3).

Whole-process peak RSS cannot show this: ~600 MiB of it is imports, the policy and MiniLM, and a few hundred MiB
more are MiniLM's activations for one batch, the same for both sizes, so even a run that buffered every row would
score ~1.05. So each size first runs a warm-up generation in the same process (imports, registries, caches), then
measures, over the post-load baseline, the peak of what rows can accumulate in: the Python heap (`tracemalloc`)
and Arrow's memory pool (the shards). The RSS growth (`VmHWM` reset after the warm-up) is printed for context.
Each size runs in its own process, so peaks do not mix. Linux only.

    python benchmarks/generation_scaling.py [--seeds_small 900] [--factor 10]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARM_UP_SEEDS = 64


def _memory_kib(field: str) -> int:
    """A `VmRSS` / `VmHWM` line of `/proc/self/status`, in KiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(f"{field}:"))
    return int(line.split()[1])


def _reset_peak() -> None:
    """Resets the peak resident size (`VmHWM`) to the current one (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _run_one(num_seeds: int, workdir: str) -> None:
    """Child process: warm up, then generate from `num_seeds` seeds; print rows, seconds and memory as JSON."""
    sys.path.insert(0, REPO)
    import pyarrow as pa
    from datasets import Dataset
    from transformers import AutoTokenizer

    from instrl_trl.data import load_quickstart_seeds
    from instrl_trl.generation import DatasetGenerationConfig, generate_dataset, load_policy
    from instrl_trl.models.tiny import build_tiny_causal_lm
    from instrl_trl.operations import STOP_ACTION, build_operation_library
    from instrl_trl.policy import build_policy

    policy = os.path.join(workdir, "policy")
    if not os.path.isdir(policy):
        backbone = build_tiny_causal_lm(os.path.join(workdir, "backbone"))
        build_policy(backbone, [*build_operation_library().names, STOP_ACTION]).save_pretrained(policy)
        AutoTokenizer.from_pretrained(backbone).save_pretrained(policy)
    # Loaded once and passed in, so that the policy is part of the baseline
    loaded_policy, processing_class, operations = load_policy(policy)
    base = load_quickstart_seeds()["instruction"]

    def generate(count: int, name: str):
        # Distinct seeds: the quickstart ones, each in several numbered variants
        seeds = Dataset.from_dict(
            {"instruction": [f"{base[i % len(base)]} (case {i // len(base)})" for i in range(count)]}
        )
        config = DatasetGenerationConfig(
            policy=policy,
            output_dir=os.path.join(workdir, name),
            keep_intermediate=True,
            keep_unverified=True,
            greedy=False,
            batch_size=64,
            shard_size=1000,
        )
        return generate_dataset(config, seeds, loaded_policy, processing_class, operations)

    generate(WARM_UP_SEEDS, f"warm-up-{num_seeds}")
    tracemalloc.start()
    arrow_pool = pa.default_memory_pool()
    arrow_baseline = arrow_pool.bytes_allocated()
    arrow_peak_before = arrow_pool.max_memory() or 0
    baseline_kib = _memory_kib("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    summary = generate(num_seeds, f"dataset-{num_seeds}")
    seconds = time.perf_counter() - start
    _, python_peak = tracemalloc.get_traced_memory()  # traced since `start()`, so the baseline is 0
    tracemalloc.stop()
    # Arrow's pool keeps one all-time peak: it counts only if the measured run went above the warm-up's
    arrow_growth = max(0, (arrow_pool.max_memory() or 0) - max(arrow_peak_before, arrow_baseline))
    result = {
        "rows": summary.num_rows,
        "seconds": seconds,
        "growth_mib": (python_peak + arrow_growth) / 2**20,
        "python_mib": python_peak / 2**20,
        "arrow_mib": arrow_growth / 2**20,
        "baseline_rss_mib": baseline_kib / 1024,
        "rss_growth_mib": (_memory_kib("VmHWM") - baseline_kib) / 1024,
    }
    print(json.dumps(result))  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--seeds_small", type=int, default=900, help="Seeds of the small run (~1k rows).")
    parser.add_argument("--factor", type=int, default=10, help="How many times more seeds the large run has.")
    parser.add_argument("--_child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_workdir", default=None, help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli._child is not None:
        _run_one(cli._child, cli._workdir)
        return

    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for num_seeds in (cli.seeds_small, cli.seeds_small * cli.factor):
            output = subprocess.run(
                [sys.executable, __file__, "--_child", str(num_seeds), "--_workdir", workdir],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            results[num_seeds] = r = json.loads(output.stdout.strip().splitlines()[-1])
            print(  # noqa: T201
                f"{num_seeds} seeds: {r['rows']} rows in {r['seconds']:.1f} s; peak growth over the post-load "
                f"baseline {r['growth_mib']:.1f} MiB (Python heap {r['python_mib']:.1f}, Arrow {r['arrow_mib']:.1f}); "
                f"for context: RSS {r['baseline_rss_mib']:.0f} MiB after loading, +{r['rss_growth_mib']:.0f} MiB peak"
            )
    small, large = results.values()
    ratio = large["growth_mib"] / small["growth_mib"]
    print(f"memory growth over the post-load baseline, {large['rows']} rows / {small['rows']} rows: {ratio:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
