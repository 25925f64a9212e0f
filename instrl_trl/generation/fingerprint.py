"""What defines a generation run's output, so that a rerun into the same `output_dir` resumes the same run only."""

from datasets import Dataset

from ..runs.folder import fingerprint_folder, fingerprint_texts
from .generation_config import DatasetGenerationConfig


# What `generate` writes in `output_dir`, removed by `overwrite_output_dir` (the response cache stays: its answers
# are keyed by backend, model and prompt, and stay valid for any run)
GENERATION_OUTPUTS = ("data", "progress", "queries-rank*.json", "README.md", "*.png")


def generation_fingerprint(config: DatasetGenerationConfig, seeds: Dataset) -> dict:
    """
    The fields of `config` that change the rows, the seed instructions' digest and the policy's (its id or path, and
    the digest of its files when local). Left out: what only changes how far or how fast the run goes (`max_seeds`,
    `shard_size`, a role's `base_url`, `max_concurrency`, timeouts and retries), and `batch_size` when the policy is
    greedy (sampling is seeded per batch).
    """
    column = config.instruction_column
    # A missing column is reported, with its fix, when the seeds are prepared
    seeds_digest = fingerprint_texts(seeds[column]) if column in seeds.column_names else None
    return {
        "seeds": seeds_digest,
        "policy": config.policy,
        "policy_files": fingerprint_folder(config.policy),
        "operations_file": config.operations_file,
        "max_operations": config.max_operations,
        "greedy": config.greedy,
        "temperature": None if config.greedy else config.temperature,
        "batch_size": None if config.greedy else config.batch_size,
        "keep_intermediate": config.keep_intermediate,
        "dedup_method": config.dedup_method,
        "dedup_threshold": config.dedup_threshold,
        "reward_funcs": config.reward_funcs,
        "reward_weights": config.reward_weights,
        "embedding_model": config.embedding_model,
        "verification_retries": config.verification_retries,
        "keep_unverified": config.keep_unverified,
        "seed": config.seed,
        **config.roles_fingerprint(("rewriter", "reviewer", "expert")),
    }
