"""
Overhead of the `sft` stage over a bare TRL `SFTTrainer` script: wall time of `run_sft` against the same training done
by hand (load the parquet shards, `SFTTrainer(model=path, ...)`, `train()`, `save_model()`).

Both sides train the same randomly initialized Llama (built with `instrl_trl.models.tiny`; nothing is downloaded)
on the same messages dataset with the same `SFTConfig` (the quickstart recipe's values, `--max_steps` steps), each
into a fresh `output_dir`. The stage also checks every row of `messages`, saves metrics and trainer state, draws the
loss plot and renders the card: all of that is inside its timing. Each side is warmed up once, then timed `--repeats`
times (alternating sides), keeping its best wall and CPU time. Printed last: the wall-time ratio stage / bare (target
<= 1.05); the CPU-time ratio before it is steadier on a machine shared with other work.

    python benchmarks/sft_overhead.py [--num_rows 128] [--max_steps 200] [--repeats 5] [--num_threads 1]
"""

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from datasets.utils.logging import disable_progress_bar

from instrl_trl.cli.sft import make_parser
from instrl_trl.models.tiny import build_tiny_causal_lm, training_corpus
from instrl_trl.stages.sft import run_sft


REPO = Path(__file__).resolve().parents[1]
MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def write_dataset(folder: Path, num_rows: int) -> str:
    seeds = training_corpus()
    rows = [
        [
            {"role": "user", "content": seeds[i % len(seeds)]},
            {"role": "assistant", "content": " ".join(seeds[(i + k) % len(seeds)] for k in range(1, 4))},
        ]
        for i in range(num_rows)
    ]
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"messages": pa.array(rows, type=MESSAGES_TYPE)}), folder / "shard-00000.parquet")
    return str(folder)


def parse(model: str, dataset: str, output_dir: str, max_steps: int):
    return make_parser().parse_args_and_config(
        ["--config", str(REPO / "recipes" / "quickstart" / "sft.yaml"), "--model_name_or_path", model,
         "--dataset_name", dataset, "--output_dir", output_dir, "--max_steps", str(max_steps),
         "--save_strategy", "no", "--disable_tqdm", "true", "--log_level", "warning"]
    )  # fmt: skip


def stage(model: str, dataset: str, output_dir: str, max_steps: int) -> None:
    run_sft(*parse(model, dataset, output_dir, max_steps))


def bare(model: str, dataset: str, output_dir: str, max_steps: int) -> None:
    """What a user would write with TRL alone, given the same config."""
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    _, training_args, _ = parse(model, dataset, output_dir, max_steps)
    train_dataset = load_dataset("parquet", data_files=f"{dataset}/*.parquet", split="train")
    tokenizer = AutoTokenizer.from_pretrained(model)
    trainer = SFTTrainer(model=model, args=training_args, train_dataset=train_dataset, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(training_args.output_dir)
    trainer.end()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--num_rows", type=int, default=128)
    parser.add_argument("--max_steps", type=int, default=200)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_hidden_layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="Timed runs per side, alternated; the best is kept.")
    parser.add_argument(
        "--num_threads", type=int, default=1, help="torch threads (1: steady timings on a shared CPU)."
    )
    cli = parser.parse_args()
    disable_progress_bar()
    torch.set_num_threads(cli.num_threads)

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_causal_lm(
            f"{tmp}/model", hidden_size=cli.hidden_size, num_hidden_layers=cli.num_hidden_layers, num_attention_heads=4
        )
        dataset = write_dataset(Path(tmp) / "dataset" / "data", cli.num_rows)
        sides = {"instrl-trl sft": stage, "bare SFTTrainer": bare}
        best = {name: [float("inf"), float("inf")] for name in sides}  # wall, CPU seconds
        for repeat in range(cli.repeats + 1):  # run 0 is the warm-up (imports, dataset cache, matplotlib)
            for name, side in sides.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                side(model, dataset, f"{tmp}/{name.split()[0]}-{repeat}", cli.max_steps)
                seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
                if repeat > 0:
                    best[name] = [min(best[name][0], seconds), min(best[name][1], cpu_seconds)]
                warm_up = " (warm-up)" if repeat == 0 else ""
                print(f"{name} run {repeat}{warm_up}: {seconds:.2f} s wall, {cpu_seconds:.2f} s CPU")  # noqa: T201
    for name, (seconds, cpu_seconds) in best.items():
        runs = f"{cli.repeats} runs of {cli.max_steps} steps"
        print(f"{name}: best {seconds:.2f} s wall, {cpu_seconds:.2f} s CPU over {runs}")  # noqa: T201
    overhead = best["instrl-trl sft"][0] - best["bare SFTTrainer"][0]
    print(f"Stage minus bare, best runs (the stage's fixed extra work, within noise): {overhead:+.2f} s")  # noqa: T201
    # CPU time (all threads of this process) is less disturbed than wall time when other work shares the cores
    cpu_ratio = best["instrl-trl sft"][1] / best["bare SFTTrainer"][1]
    print(f"CPU time, instrl-trl sft / bare SFTTrainer: {cpu_ratio:.2f}")  # noqa: T201
    ratio = best["instrl-trl sft"][0] / best["bare SFTTrainer"][0]
    print(f"instrl-trl sft / bare SFTTrainer: {ratio:.2f}")  # noqa: T201


if __name__ == "__main__":
    main()
