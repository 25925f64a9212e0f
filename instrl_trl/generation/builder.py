"""
The generation stage: seeds -> evolve (policy + rewriter + reviewer) -> deduplicate -> answer and verify (expert)
-> append-only parquet shards -> card -> push. Each function consumes and returns plain batches; `generate_dataset`
wires them, shows progress, and resumes where a killed run stopped; `run_generate` is the whole stage.
"""

import os
from dataclasses import dataclass, field

import pyarrow.parquet as pq
import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..backends.accounting import QueryAccounting, write_queries_file
from ..backends.base import Expert, Reviewer, Rewriter
from ..backends.failure_budget import FailureBudget, RoleFailureError
from ..backends.roles import build_role
from ..backends.server_load import ClientLoad, ServerLoad
from ..data.seeds import prepare_seed_dataset
from ..embeddings import SentenceEmbedder
from ..hub.push import push_folder
from ..operations import OperationLibrary
from ..rewards import get_reward_funcs
from ..runs.folder import claim_run_folder, stage_state
from .card import write_dataset_card
from .cross_rank import deduplicate_across_ranks
from .filters import Deduplicator
from .fingerprint import GENERATION_OUTPUTS, generation_fingerprint
from .generation_config import DatasetGenerationConfig
from .pipeline import PipelinedGeneration
from .policies import (
    BASELINE_KINDS,
    ActPolicy,
    EvolutionSetup,
    GenerationPolicy,
    PPOPolicy,
    describe_policy,
    load_generation_policy,
    policy_kind,
)
from .responses import ExpertUnavailableError, answer_and_verify
from .rows import ROW_SCHEMA, to_row
from .shards import ShardWriter, list_shards


QUERIES_FILE = "queries-rank{rank:05d}.json"


def load_policy(policy: str, operations_file: str | None = None) -> tuple[PreTrainedModel, object, OperationLibrary]:
    """
    Loads a trained PPO operation policy and the operations named by its labels. A label that is neither a default nor
    a user operation (from `operations_file`) raises a `ValueError` listing the valid ones. Other kinds of policy load
    with [`~instrl_trl.generation.policies.load_generation_policy`].
    """
    loaded = load_generation_policy(policy, operations_file)
    if not isinstance(loaded, PPOPolicy):
        raise ValueError(  # noqa: TRY004 (a wrong value of `policy`, not a wrong type)
            f"`policy` {policy!r} is a {loaded.kind!r} policy, not a PPO operation policy (a sequence classifier "
            "saved by `instrl-trl train-policy`); load it with `load_generation_policy`."
        )
    return loaded.model, loaded.tokenizer, loaded.operations


@dataclass
class GenerationSummary:
    r"""
    What a `generate_dataset` call did on this process.

    Parameters:
        output_dir (`str`): where the shards are.
        num_rows (`int`): rows written by this call.
        num_seeds (`int`): seeds processed by this call (seeds done by earlier runs are skipped).
        num_skipped_seeds (`int`): seeds found done from an earlier run.
        num_failed_seeds (`int`): seeds of this call left undone because some of their queries failed (after the
            backend's retries); the next run processes them again.
        server_loads (`dict[str, ServerLoad]`): per endpoint, how full a pipelined run kept its `max_concurrency`
            (empty for a lock-step run).
        client_load (`ClientLoad` or `None`): a pipelined run's CPU and waiting for answers (`None` for lock-step).
    """

    output_dir: str
    num_rows: int
    num_seeds: int
    num_skipped_seeds: int
    num_failed_seeds: int = 0
    server_loads: dict[str, ServerLoad] = field(default_factory=dict)
    client_load: ClientLoad | None = None


def generate_dataset(
    config: DatasetGenerationConfig,
    seeds: Dataset,
    policy: GenerationPolicy | PreTrainedModel | None = None,
    processing_class=None,
    operations: OperationLibrary | None = None,
    rewriter: Rewriter | None = None,
    reviewer: Reviewer | None = None,
    expert: Expert | None = None,
) -> GenerationSummary:
    """
    Builds the instruction dataset from `seeds` with a policy (loaded from `config.policy` unless given: a PPO
    operation policy, an instructor or a baseline, see [`~instrl_trl.generation.policies.load_generation_policy`];
    a PPO policy may also be given as its model, `processing_class` and `operations`) and writes parquet shards under
    `config.output_dir/data`. Safe to kill at any moment: the same call resumes
    without losing or repeating a row (a `bandit` from what it had learned on the seeds done, so that its rows are
    those of an uninterrupted run). Under `accelerate launch`, each process takes every `num_processes`-th seed
    and writes its own shards.

    A seed some of whose queries failed (after the backend's retries) is not done: its rows are not written and the
    next run processes it again (the response cache answers its successful queries). When one role fails at least
    `max_failure_fraction` of its queries in a batch, generation stops with a `RuntimeError` naming the role, its
    endpoint and its last error; the rows already written are kept.

    The rows have the columns of [`~instrl_trl.generation.rows.ROW_COLUMNS`].
    """
    # Everything is checked and built before the first query
    seeds = prepare_seed_dataset(seeds, config.instruction_column)
    if policy is None:
        policy = load_generation_policy(config.policy, config.operations_file)
    elif isinstance(policy, PreTrainedModel):
        policy = PPOPolicy(policy, processing_class, operations)
    cache = config.response_cache_path(config.output_dir)
    rewriter = rewriter or build_role("rewriter", config.rewriter, cache)
    reviewer = reviewer or build_role("reviewer", config.reviewer, cache)
    expert = expert or build_role("expert", config.expert, cache)
    accounting = QueryAccounting()
    roles = {"rewriter": rewriter, "reviewer": reviewer, "expert": expert}
    budget = FailureBudget(accounting.details, roles, config.max_failure_fraction)
    reward_funcs = get_reward_funcs(config.reward_funcs, embedding_model=config.embedding_model)
    setup = EvolutionSetup(
        rewriter, reviewer, accounting, reward_funcs, torch.tensor(config.reward_weights or [1.0] * len(reward_funcs)),
        config.max_operations, config.seed, greedy=config.greedy, temperature=config.temperature,
        keep_intermediate=config.keep_intermediate,
    )  # fmt: skip
    embedder = SentenceEmbedder(config.embedding_model) if config.embedding_model else None
    deduplicator = Deduplicator(config.dedup_method, config.dedup_threshold, embedder)

    state = stage_state()
    writer = ShardWriter(config.output_dir, state.process_index, config.shard_size, ROW_SCHEMA)
    done = writer.done_seed_indices()
    policy_state = writer.policy_state()
    if policy_state is not None:
        policy.load_state_dict(policy_state)  # a learning policy goes on from what it learned on the seeds done
    deduplicator.remember(_instructions_in(list_shards(config.output_dir, state.process_index)))
    num_seeds = len(seeds) if config.max_seeds is None else min(config.max_seeds, len(seeds))
    mine = list(range(state.process_index, num_seeds, state.num_processes))
    todo = [index for index in mine if index not in done]
    num_todo = len(todo)
    instructions = seeds[config.instruction_column]

    server_loads: dict[str, ServerLoad] = {}
    client_load = None
    progress = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="Generating", unit="seed",
                    disable=not state.is_main_process)  # fmt: skip
    try:
        if config.pipelined and isinstance(policy, ActPolicy):
            pipeline = PipelinedGeneration(policy, setup, expert, deduplicator, writer, budget, config.batch_size,
                                           config.verification_retries, config.keep_unverified)  # fmt: skip
            result = pipeline.run(todo, instructions, on_committed=progress.update)
            num_rows, failed_seeds, server_loads = result.num_rows, result.failed_seed_indices, result.server_loads
            client_load = result.client_load
        else:
            num_rows, failed_seeds = _generate_lock_step(config, policy, setup, expert, deduplicator, writer, budget,
                                                         todo, instructions, progress)  # fmt: skip
        writer.flush()
    except (RoleFailureError, ExpertUnavailableError, OSError) as error:
        # What a run meets in the world (a failing backend, a full disk): one message that says how to resume
        writer.flush()  # rows of finished seeds are kept
        raise RuntimeError(
            f"Generation stopped: {error} The rows already written ({len(list_shards(config.output_dir))} shard(s) "
            f"in {config.output_dir}/data) are kept; once the cause is fixed, run the same command again to resume."
        ) from error
    except BaseException:
        writer.flush()  # a bug or an interrupt: the rows of finished seeds are kept, and its traceback too
        raise
    finally:
        progress.close()
        # One running total per rank: a resumed run adds to the first
        path = os.path.join(config.output_dir, QUERIES_FILE.format(rank=state.process_index))
        write_queries_file(path, accounting.details(), add_to_existing=True)
    return GenerationSummary(
        config.output_dir, num_rows, num_todo, len(mine) - num_todo, len(failed_seeds), server_loads, client_load
    )


def _generate_lock_step(
    config: DatasetGenerationConfig,
    policy: GenerationPolicy,
    setup: EvolutionSetup,
    expert: Expert,
    deduplicator: Deduplicator,
    writer: ShardWriter,
    budget: FailureBudget,
    todo: list[int],
    instructions: list[str],
    progress,
) -> tuple[int, set[int]]:
    """
    The batch-by-batch stage (`pipelined: false`, and the instructor, which chooses every episode's operations in one
    generation): each batch's episodes advance one operation round at a time, then the expert answers the batch.
    Returns the rows written and the seeds whose queries failed.
    """
    num_rows, failed_seeds = 0, set()
    for start in range(0, len(todo), config.batch_size):
        batch = todo[start : start + config.batch_size]
        # Sampling is seeded by the batch's first seed index, so a resumed run samples as an uninterrupted one
        budget.start_batch()
        evolved = policy.evolve(setup, [instructions[i] for i in batch], batch)
        candidates, failed = evolved.candidates, set(evolved.failed_seed_indices)
        budget.check_batch()  # before paying the expert for a batch whose rewriter is down
        unanswered = []
        answered = answer_and_verify(
            expert, deduplicator.filter(candidates), setup.accounting, config.verification_retries,
            config.keep_unverified, on_failure=unanswered.append,
        )  # fmt: skip
        failed |= {candidate.seed_index for candidate in unanswered}
        rows = [to_row(item) for item in answered if item.candidate.seed_index not in failed]
        # The policy's state after this batch is committed with its seeds (a `bandit` learned from their verdicts)
        writer.add(rows, [index for index in batch if index not in failed], policy.state_dict())
        num_rows += len(rows)
        failed_seeds |= failed
        progress.update(len(batch))
        budget.check_batch()
    return num_rows, failed_seeds


def _instructions_in(shards) -> list[str]:
    return [
        text for shard in shards for text in pq.read_table(shard, columns=["instruction"])["instruction"].to_pylist()
    ]


def run_generate(config: DatasetGenerationConfig) -> GenerationSummary:
    r"""
    The `generate` stage: loads the seeds of `config`, claims `output_dir` (one run at a time; a rerun with another
    recipe is refused, see [`~instrl_trl.runs.folder.claim_run_folder`]), generates (or resumes) the dataset,
    writes its card on the main process, and pushes the dataset (and a local policy, with `hub_policy_id`) when
    `push_to_hub` is set. Under `accelerate launch` every process calls it and generates its share of the seeds.

    Returns:
        [`GenerationSummary`]: what this process generated.

    Raises:
        `RuntimeError`: when seeds were left undone because their queries failed (after writing the card of what
            is done, and without pushing), or when a role failed past `max_failure_fraction`.
    """
    state = stage_state()
    seeds = config.load_seeds(config.instruction_column)
    fingerprint = generation_fingerprint(config, seeds)
    with claim_run_folder(
        config.output_dir, "generate", fingerprint, config.overwrite_output_dir, outputs=GENERATION_OUTPUTS
    ):
        summary = generate_dataset(config, seeds)
        num_failed_seeds = _sum_over_processes(summary.num_failed_seeds, state)
        if state.num_processes > 1 and state.is_main_process:
            # Each process deduplicated its own seeds; a duplicate made on two ranks is kept once, in seed order
            embedder = SentenceEmbedder(config.embedding_model) if config.embedding_model else None
            deduplicate_across_ranks(
                config.output_dir, Deduplicator(config.dedup_method, config.dedup_threshold, embedder)
            )
        if state.is_main_process:
            _finish(config, seeds, summary, num_failed_seeds)
        state.wait_for_everyone()
    if num_failed_seeds:
        raise RuntimeError(
            f"{num_failed_seeds} seeds are not done: some of their queries failed after the backend's retries (see "
            f"the warnings above). The rows of the other seeds are written in {config.output_dir}/data; run the same "
            "command again to process the failed seeds."
        )
    return summary


def _sum_over_processes(value: int, state: PartialState) -> int:
    return sum(gather_object([value])) if state.num_processes > 1 else value


def _finish(
    config: DatasetGenerationConfig, seeds: Dataset, summary: GenerationSummary, num_failed_seeds: int
) -> None:
    """The main process's part: the card, the summary line and, once every seed is done, the push."""
    quickstart = config.dataset_name is None
    local_policy = os.path.isdir(config.policy)
    # A baseline chose the operations: the card never names a trained policy, even one the recipe sets to push
    if policy_kind(config.policy) in BASELINE_KINDS:
        hub_policy = None
    else:
        hub_policy = config.hub_policy_id or (None if local_policy else config.policy)
    write_dataset_card(
        config.output_dir,
        num_seeds=len(seeds) if config.max_seeds is None else min(config.max_seeds, len(seeds)),
        roles={role: _describe_role(getattr(config, role)) for role in ("rewriter", "reviewer", "expert")},
        seeds_source="the instrl-trl quickstart seeds" if quickstart else config.dataset_name,
        seeds_license=config.seeds_license or ("apache-2.0" if quickstart else "other"),
        policy=hub_policy,
        policy_description=None if hub_policy else describe_policy(config.policy),
        dataset_id=config.hub_dataset_id,
    )
    print(  # noqa: T201
        f"Dataset written to {os.path.abspath(config.output_dir)}: {summary.num_rows} new rows from "
        f"{summary.num_seeds - summary.num_failed_seeds} seeds ({summary.num_skipped_seeds} seeds done by an earlier "
        f"run{f', {num_failed_seeds} not done: their queries failed' if num_failed_seeds else ''})."
    )
    for endpoint, load in summary.server_loads.items():
        print(f"Server {endpoint} (this process): {load.describe()}.")  # noqa: T201
    if summary.server_loads and summary.client_load is not None:
        print(f"Meanwhile, {summary.client_load.describe()}.")  # noqa: T201
    if config.push_to_hub and not num_failed_seeds:
        patterns = ["data/*.parquet", "README.md", "*.png"]
        url = push_folder(config.output_dir, config.hub_dataset_id, "dataset", allow_patterns=patterns,
                          private=config.hub_private)  # fmt: skip
        print(f"Dataset pushed: {url}")  # noqa: T201
        if config.hub_policy_id and local_policy:
            url = push_folder(config.policy, config.hub_policy_id, "model", private=config.hub_private,
                              allow_patterns=["*.json", "*.safetensors", "*.md", "*.txt", "*.png"])  # fmt: skip
            print(f"Policy pushed: {url}")  # noqa: T201


def _describe_role(spec: dict) -> str:
    backend = spec.get("backend", "rules")
    return backend if backend == "rules" else f"{backend} ({spec.get('model')})"
