"""
The generation stage: seeds -> evolve (policy + rewriter + reviewer) -> deduplicate -> answer and verify (expert)
-> append-only parquet shards -> card -> push. Each function consumes and returns plain batches; `generate_dataset`
wires them, shows progress, and resumes where a killed run stopped; `run_generate` is the whole stage.
"""

import os
from dataclasses import dataclass
from functools import partial

import pyarrow.parquet as pq
import torch
from accelerate import PartialState
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from ..backends.accounting import QueryAccounting, write_queries_file
from ..backends.base import Expert, Reviewer, Rewriter
from ..backends.roles import build_role
from ..data.seeds import prepare_seed_dataset
from ..embeddings import SentenceEmbedder
from ..environment import STOP_ACTION, InstructionEnv
from ..hub.push import push_folder
from ..operations import OperationLibrary, build_operation_library
from ..policy import act
from ..rewards import get_reward_funcs
from ..rewards.scoring import weighted_rewards
from .card import write_dataset_card
from .evolve import evolve_seeds
from .filters import Deduplicator
from .generation_config import DatasetGenerationConfig
from .responses import answer_and_verify
from .rows import ROW_SCHEMA, to_row
from .shards import ShardWriter, list_shards


QUERIES_FILE = "queries-rank{rank:05d}.json"


def load_policy(policy: str, operations_file: str | None = None) -> tuple[PreTrainedModel, object, OperationLibrary]:
    """
    Loads a trained policy and the operations named by its labels. A label that is neither a default nor a user
    operation (from `operations_file`) raises a `ValueError` listing the valid ones.
    """
    model = AutoModelForSequenceClassification.from_pretrained(policy).eval()
    tokenizer = AutoTokenizer.from_pretrained(policy)
    labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    if not labels or labels[-1] != STOP_ACTION:
        raise ValueError(
            f"{policy!r} is not an operation policy: its labels {labels} do not end with {STOP_ACTION!r}. Train one "
            "with `instrl-trl train-policy`."
        )
    library = build_operation_library(extra=operations_file)
    unknown = [label for label in labels[:-1] if label not in library]
    if unknown:
        raise ValueError(
            f"The policy {policy!r} chooses operations {unknown} that are not defined. Known operations: "
            f"{', '.join(library)}. Pass the user operations it was trained with as `operations_file`."
        )
    return model, tokenizer, library.select(labels[:-1])


@dataclass
class GenerationSummary:
    r"""
    What a `generate_dataset` call did on this process.

    Parameters:
        output_dir (`str`): where the shards are.
        num_rows (`int`): rows written by this call.
        num_seeds (`int`): seeds processed by this call (seeds done by earlier runs are skipped).
        num_skipped_seeds (`int`): seeds found done from an earlier run.
    """

    output_dir: str
    num_rows: int
    num_seeds: int
    num_skipped_seeds: int


def generate_dataset(
    config: DatasetGenerationConfig,
    seeds: Dataset,
    policy: PreTrainedModel | None = None,
    processing_class=None,
    operations: OperationLibrary | None = None,
    rewriter: Rewriter | None = None,
    reviewer: Reviewer | None = None,
    expert: Expert | None = None,
) -> GenerationSummary:
    """
    Builds the instruction dataset from `seeds` with a trained policy (loaded from `config.policy` unless given)
    and writes parquet shards under `config.output_dir/data`. Safe to kill at any moment: the same call resumes
    without losing or repeating a row. Under `accelerate launch`, each process takes every `num_processes`-th seed
    and writes its own shards.

    The rows have the columns of [`~instrl_trl.generation.rows.ROW_COLUMNS`].
    """
    # Everything is checked and built before the first query
    seeds = prepare_seed_dataset(seeds, config.instruction_column)
    if policy is None:
        policy, processing_class, operations = load_policy(config.policy, config.operations_file)
    cache = config.response_cache_path(config.output_dir)
    rewriter = rewriter or build_role("rewriter", config.rewriter, cache)
    reviewer = reviewer or build_role("reviewer", config.reviewer, cache)
    expert = expert or build_role("expert", config.expert, cache)
    accounting = QueryAccounting()
    env = InstructionEnv(
        operations, rewriter, reviewer, config.max_operations, accounting=accounting, seed=config.seed
    )
    reward_funcs = get_reward_funcs(config.reward_funcs, embedding_model=config.embedding_model)
    weights = torch.tensor(config.reward_weights or [1.0] * len(reward_funcs))
    embedder = SentenceEmbedder(config.embedding_model) if config.embedding_model else None
    deduplicator = Deduplicator(config.dedup_threshold, embedder)

    state = PartialState()
    writer = ShardWriter(config.output_dir, state.process_index, config.shard_size, ROW_SCHEMA)
    done = writer.done_seed_indices()
    deduplicator.remember(_instructions_in(list_shards(config.output_dir, state.process_index)))
    num_seeds = len(seeds) if config.max_seeds is None else min(config.max_seeds, len(seeds))
    mine = list(range(state.process_index, num_seeds, state.num_processes))
    todo = [index for index in mine if index not in done]
    instructions = seeds[config.instruction_column]

    def score(result):
        return weighted_rewards(reward_funcs, weights, result.instructions, result.new_instructions,
                                **result.reward_kwargs())[0]  # fmt: skip

    num_rows = 0
    progress = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="Generating", unit="seed",
                    disable=not state.is_main_process)  # fmt: skip
    try:
        for start in range(0, len(todo), config.batch_size):
            batch = todo[start : start + config.batch_size]
            # Sampling is seeded by the batch's first seed index, so a resumed run samples as an uninterrupted one
            generator = torch.Generator().manual_seed(config.seed + batch[0])
            act_fn = partial(act, policy, processing_class, greedy=config.greedy, generator=generator,
                             temperature=config.temperature)  # fmt: skip
            candidates = evolve_seeds(
                env, act_fn, [instructions[i] for i in batch], batch, score, config.keep_intermediate
            )
            answered = answer_and_verify(
                expert, deduplicator.filter(candidates), accounting, config.verification_retries,
                config.keep_unverified,
            )  # fmt: skip
            rows = [to_row(item) for item in answered]
            writer.add(rows, batch)
            num_rows += len(rows)
            progress.update(len(batch))
        writer.flush()
    except Exception as error:
        writer.flush()  # rows of finished seeds are kept
        raise RuntimeError(
            f"Generation stopped: {error}. The {len(list_shards(config.output_dir))} shard(s) already written in "
            f"{config.output_dir}/data stay there; run the same command again to resume."
        ) from error
    finally:
        progress.close()
        # One running total per rank: a resumed run adds to the first
        path = os.path.join(config.output_dir, QUERIES_FILE.format(rank=state.process_index))
        write_queries_file(path, accounting.details(), add_to_existing=True)
    return GenerationSummary(config.output_dir, num_rows, len(todo), len(mine) - len(todo))


def _instructions_in(shards) -> list[str]:
    return [
        text for shard in shards for text in pq.read_table(shard, columns=["instruction"])["instruction"].to_pylist()
    ]


def run_generate(config: DatasetGenerationConfig) -> GenerationSummary:
    r"""
    The `generate` stage: loads the seeds of `config`, generates (or resumes) the dataset, writes its card on the main
    process, and pushes the dataset (and a local policy, with `hub_policy_id`) when `push_to_hub` is set. Under
    `accelerate launch` every process calls it and generates its share of the seeds.

    Returns:
        [`GenerationSummary`]: what this process generated.
    """
    state = PartialState()
    seeds = config.load_seeds()
    summary = generate_dataset(config, seeds)
    state.wait_for_everyone()
    if not state.is_main_process:
        return summary
    quickstart = config.dataset_name is None
    local_policy = os.path.isdir(config.policy)
    write_dataset_card(
        config.output_dir,
        num_seeds=len(seeds) if config.max_seeds is None else min(config.max_seeds, len(seeds)),
        roles={role: _describe_role(getattr(config, role)) for role in ("rewriter", "reviewer", "expert")},
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
    return summary


def _describe_role(spec: dict) -> str:
    backend = spec.get("backend", "rules")
    return backend if backend == "rules" else f"{backend} ({spec.get('model')})"
