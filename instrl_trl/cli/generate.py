"""Build the instruction dataset with a trained policy (evolve, answer, verify, shard, card, push)."""

import argparse


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from trl import TrlParser

    from ..generation import DatasetGenerationConfig

    if subparsers is not None:
        return subparsers.add_parser("generate", help=__doc__, dataclass_types=(DatasetGenerationConfig,))
    return TrlParser((DatasetGenerationConfig,), prog=prog)


def _describe(spec: dict) -> str:
    backend = spec.get("backend", "rules")
    return backend if backend == "rules" else f"{backend} ({spec.get('model')})"


def main(config) -> str:
    """Generates (or resumes), writes the card on the main process, and pushes when asked; returns `output_dir`."""
    import os

    from accelerate import PartialState

    from ..generation import generate_dataset, write_dataset_card
    from ..hub.push import push_folder
    from .seeds import load_seeds

    state = PartialState()
    seeds = load_seeds(config.dataset_name, config.dataset_config, config.dataset_split)
    summary = generate_dataset(config, seeds)
    state.wait_for_everyone()
    if not state.is_main_process:
        return config.output_dir
    quickstart = config.dataset_name is None
    local_policy = os.path.isdir(config.policy)
    write_dataset_card(
        config.output_dir,
        num_seeds=len(seeds) if config.max_seeds is None else min(config.max_seeds, len(seeds)),
        roles={role: _describe(getattr(config, role)) for role in ("rewriter", "reviewer", "expert")},
        seeds_source="the instrl-trl quickstart seeds" if quickstart else config.dataset_name,
        seeds_license=config.seeds_license or ("apache-2.0" if quickstart else "other"),
        policy=config.hub_policy_id or (None if local_policy else config.policy),
        dataset_id=config.hub_dataset_id,
    )
    print(  # noqa: T201
        f"Dataset written to {os.path.abspath(config.output_dir)}: {summary.num_rows} new rows from "
        f"{summary.num_seeds} seeds ({summary.num_skipped_seeds} seeds done by an earlier run)."
    )
    if config.push_to_hub:
        patterns = ["data/*.parquet", "README.md", "*.png"]
        url = push_folder(config.output_dir, config.hub_dataset_id, "dataset", allow_patterns=patterns,
                          private=config.hub_private)  # fmt: skip
        print(f"Dataset pushed: {url}")  # noqa: T201
        if config.hub_policy_id and local_policy:
            url = push_folder(config.policy, config.hub_policy_id, "model", private=config.hub_private,
                              allow_patterns=["*.json", "*.safetensors", "*.md", "*.txt", "*.png"])  # fmt: skip
            print(f"Policy pushed: {url}")  # noqa: T201
    return config.output_dir
