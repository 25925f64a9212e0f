"""
Memory of the generation stage as the dataset grows: peak RSS of a run that writes ~1k rows and of one that writes
~10x more, same settings (rules backend, near-duplicate filter on, a tiny policy). Rows stream to parquet shards,
so the ratio should stay close to 1 (target <= 1.3). Each size runs in its own process, so peaks do not mix.

    python benchmarks/generation_scaling.py [--seeds_small 900]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_one(num_seeds: int, workdir: str) -> None:
    """Child process: generate from `num_seeds` seeds and print rows, seconds and peak RSS as JSON."""
    sys.path.insert(0, REPO)
    from datasets import Dataset
    from transformers import AutoTokenizer

    from instrl_trl.data import load_quickstart_seeds
    from instrl_trl.environment import STOP_ACTION
    from instrl_trl.generation import DatasetGenerationConfig, generate_dataset
    from instrl_trl.operations import build_operation_library
    from instrl_trl.policy import build_policy
    from tests.tiny_models import build_tiny_policy_backbone

    policy = os.path.join(workdir, "policy")
    if not os.path.isdir(policy):
        backbone = build_tiny_policy_backbone(os.path.join(workdir, "backbone"))
        build_policy(backbone, [*build_operation_library().names, STOP_ACTION]).save_pretrained(policy)
        AutoTokenizer.from_pretrained(backbone).save_pretrained(policy)
    base = load_quickstart_seeds()["instruction"]
    # Distinct seeds: the quickstart ones, each in several numbered variants
    seeds = Dataset.from_dict(
        {"instruction": [f"{base[i % len(base)]} (case {i // len(base)})" for i in range(num_seeds)]}
    )
    config = DatasetGenerationConfig(
        policy=policy,
        output_dir=os.path.join(workdir, f"dataset-{num_seeds}"),
        keep_intermediate=True,
        keep_unverified=True,
        greedy=False,
        batch_size=64,
        shard_size=1000,
    )
    start = time.perf_counter()
    summary = generate_dataset(config, seeds)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"rows": summary.num_rows, "seconds": seconds, "peak_mib": peak_mib}))  # noqa: T201


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
            results[num_seeds] = json.loads(output.stdout.strip().splitlines()[-1])
            r = results[num_seeds]
            print(f"{num_seeds} seeds: {r['rows']} rows in {r['seconds']:.1f} s, peak RSS {r['peak_mib']:.0f} MiB")  # noqa: T201
    small, large = results.values()
    print(f"peak RSS, {large['rows']} rows / {small['rows']} rows: {large['peak_mib'] / small['peak_mib']:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
