from dataclasses import dataclass, field

from ..backends.role_arguments import RoleArguments
from ..data.seeds import SeedColumnArguments, SeedDataArguments
from ..rewards.reward_arguments import RewardArguments
from ..runs.folder import RunFolderArguments
from .filters import DEDUP_METHODS, DEFAULT_DEDUP_THRESHOLDS


# Why `novelty` is left out: see the NOTE in the docstring below
GENERATION_REWARD_FUNCS = ["information_gain", "elimination", "query_cost"]


@dataclass
class DatasetGenerationConfig(
    SeedDataArguments, SeedColumnArguments, RoleArguments, RewardArguments, RunFolderArguments
):
    r"""
    Configuration of the `generate` stage: a trained operation policy evolves seed instructions, an expert answers
    them, and the rows are written as parquet shards (see [`run_generate`]). The seeds (`dataset_name`,
    `dataset_config`, `dataset_split`, `instruction_column`), the `rewriter`, `reviewer`, `response_cache` and
    `max_failure_fraction`, the rewards (`reward_funcs`, `reward_weights`, `embedding_model`, which the
    `embedding` near-duplicate filter uses too) and `overwrite_output_dir` are the fields of
    [`~instrl_trl.data.seeds.SeedDataArguments`],
    [`~instrl_trl.data.seeds.SeedColumnArguments`], [`~instrl_trl.backends.role_arguments.RoleArguments`],
    [`~instrl_trl.rewards.reward_arguments.RewardArguments`] and [`~instrl_trl.runs.folder.RunFolderArguments`],
    shared with the `train-policy` stage.

    Parameters:
        > Parameters that control the inputs

        policy (`str`):
            What chooses the operations: a PPO operation policy saved by `train-policy` (a sequence classifier whose
            labels end with `stop`) or an instructor saved by `train-instructor` (a causal LM that calls the
            operations as tools), as a local folder or a Hub id; or a baseline that needs no training: `uniform`
            (Evol-Instruct's uniform-random operations), `no_repeat` (random operations never repeated within an
            episode, then `stop`) or `sequence:<op>,<op>,...` (the same operations for every seed). See
            [`~instrl_trl.generation.policies.load_generation_policy`].
        max_seeds (`int`, *optional*):
            Use only the first `max_seeds` seeds.
        seeds_license (`str`, *optional*):
            Licence of the seeds, written into the dataset card. Defaults to `apache-2.0` for the quickstart seeds,
            `other` otherwise.
        operations_file (`str`, *optional*):
            User operations (YAML or `module:attribute`) the policy was trained with.

        > Parameters that control the evolution

        max_operations (`int`, *optional*, defaults to `6`):
            Operations per seed, as in training.
        greedy (`bool`, *optional*, defaults to `True`):
            Take the policy's most likely operation at each step; `False` samples (seeded, reproducible).
        temperature (`float`, *optional*, defaults to `1.0`):
            Softmax temperature when sampling.
        keep_intermediate (`bool`, *optional*, defaults to `False`):
            Keep every accepted instruction of an episode, not only its last one (the paper kept them all).
        dedup_method (`str`, *optional*, defaults to `"minhash"`):
            How an instruction is found to be a near-duplicate of one already kept: `"minhash"` (the Jaccard
            similarity of their word 3-gram sets, ~0.1 ms of CPU per row) or `"embedding"` (the cosine similarity of
            their `embedding_model` embeddings, which also catches paraphrases, at 20-70 ms of CPU per row on a CPU:
            on a two-core client that, not the server, limits the rows per second).
        dedup_threshold (`float` or `None`, *optional*, defaults to `None`):
            Similarity at or above which an instruction is a near-duplicate of one already kept and is dropped:
            `0.8` for `"minhash"` and `0.95` for `"embedding"` when unset. `1.0` keeps near-duplicates (exact
            duplicates are always dropped).

        > Parameters that control the roles

        expert (`dict` or `str`, *optional*):
            Backend of the expert that answers the evolved instructions, in the same form as `rewriter`; the rules
            engine when unset.

        > Parameters that control verification

        verification_retries (`int`, *optional*, defaults to `1`):
            When an answer fails one of its instruction's verifiable constraints, ask the expert again up to this
            many times.
        keep_unverified (`bool`, *optional*, defaults to `False`):
            Keep rows whose answer still fails a constraint after the retries (with `verified=False`); drop them
            otherwise.

        > Parameters that control the output

        output_dir (`str`):
            Where the shards (`data/`), the progress markers, the card and the plot are written.
        batch_size (`int`, *optional*, defaults to `32`):
            The fewest episodes in flight at once (more when the roles' servers have more slots: twice the sum of
            their `max_concurrency`), and the most states in one policy forward pass. With `pipelined: false`, the
            seeds evolved and answered together.
        pipelined (`bool`, *optional*, defaults to `True`):
            Advance each seed's episode as soon as its own queries return, and answer its instructions as soon as it
            ends, so that an endpoint's slots stay busy; rows are still written in seed order and do not depend on the
            server's timing. `False` plays lock-step batches (every operation round waits for the batch's slowest
            query): the earlier behaviour, whose sampling is seeded per batch, so its rows differ. An instructor
            policy always plays lock-step batches.
        shard_size (`int`, *optional*, defaults to `1000`):
            Rows per parquet shard; a shard is written (atomically) when full and at the end.
        seed (`int`, *optional*, defaults to `42`):
            Seed of the rewrites and of sampled operations.
        push_to_hub (`bool`, *optional*, defaults to `False`):
            Push the dataset (and the policy, if `hub_policy_id` is set) once generation is complete.
        hub_dataset_id (`str`, *optional*):
            Hub repository of the dataset; required with `push_to_hub`.
        hub_policy_id (`str`, *optional*):
            Hub repository to push the policy to, with its card, next to the dataset.
        hub_private (`bool`, *optional*, defaults to `False`):
            Create the Hub repositories as private.

    > [!NOTE]
    > These parameters have default values different from [`~instrl_trl.rewards.reward_arguments.RewardArguments`]:
    > - `reward_funcs`: `["information_gain", "elimination", "query_cost"]`, the training default without `novelty`,
    >   whose memory would make a row's `reward` depend on the seeds processed before it (a resumed run would then
    >   write other rewards than an uninterrupted one).
    """

    # Parameters that control the inputs
    policy: str = field(
        default=None,
        metadata={
            "help": "What chooses the operations: a PPO operation policy or an instructor (local folder or Hub id), "
            "or a baseline: `uniform`, `no_repeat` or `sequence:<op>,<op>,...`."
        },
    )
    max_seeds: int | None = field(default=None, metadata={"help": "Use only the first `max_seeds` seeds."})
    seeds_license: str | None = field(default=None, metadata={"help": "Licence of the seeds, for the dataset card."})
    operations_file: str | None = field(
        default=None, metadata={"help": "User operations (YAML or `module:attribute`) the policy was trained with."}
    )

    # Parameters that control the evolution
    max_operations: int = field(default=6, metadata={"help": "Operations per seed, as in training."})
    greedy: bool = field(default=True, metadata={"help": "Take the most likely operation; False samples (seeded)."})
    temperature: float = field(default=1.0, metadata={"help": "Softmax temperature when sampling."})
    keep_intermediate: bool = field(
        default=False, metadata={"help": "Keep every accepted instruction of an episode, not only its last one."}
    )
    dedup_method: str = field(
        default="minhash",
        metadata={"help": "Near-duplicates by shared word 3-grams (`minhash`) or embeddings (`embedding`).",
                  "choices": list(DEDUP_METHODS)},
    )  # fmt: skip
    dedup_threshold: float | None = field(
        default=None,
        metadata={
            "help": "Similarity at or above which an instruction is a near-duplicate (0.8 minhash, 0.95 embedding)."
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: list(GENERATION_REWARD_FUNCS),
        metadata={"help": "Reward functions whose weighted sum over the episode is stored as `reward`."},
    )

    # Parameters that control the roles
    expert: dict | str | None = field(default=None, metadata={"help": "Backend of the expert (rules if unset)."})

    # Parameters that control verification
    verification_retries: int = field(
        default=1, metadata={"help": "Times to ask the expert again when an answer fails a constraint."}
    )
    keep_unverified: bool = field(
        default=False,
        metadata={"help": "Keep rows that still fail a constraint (verified=False) instead of dropping."},
    )

    # Parameters that control the output
    output_dir: str = field(default=None, metadata={"help": "Where shards, progress markers, card and plot go."})
    batch_size: int = field(
        default=32,
        metadata={"help": "Fewest episodes in flight (more with servers: 2 x their max_concurrency); policy batch."},
    )
    pipelined: bool = field(
        default=True,
        metadata={"help": "Advance each episode as its own queries return (False: lock-step batches, as before)."},
    )
    shard_size: int = field(default=1000, metadata={"help": "Rows per parquet shard."})
    seed: int = field(default=42, metadata={"help": "Seed of the rewrites and of sampled operations."})
    push_to_hub: bool = field(default=False, metadata={"help": "Push the dataset (and policy) when complete."})
    hub_dataset_id: str | None = field(default=None, metadata={"help": "Hub repository of the dataset."})
    hub_policy_id: str | None = field(default=None, metadata={"help": "Hub repository to push the policy to."})
    hub_private: bool = field(default=False, metadata={"help": "Create the Hub repositories as private."})

    def __post_init__(self):
        for name in ("policy", "output_dir"):
            if not getattr(self, name):
                raise ValueError(f"`{name}` is required: set it in the recipe or with `--{name}`.")
        if self.dedup_method not in DEDUP_METHODS:
            raise ValueError(f"`dedup_method` must be one of {', '.join(DEDUP_METHODS)}, got {self.dedup_method!r}.")
        if self.dedup_threshold is None:
            self.dedup_threshold = DEFAULT_DEDUP_THRESHOLDS[self.dedup_method]
        checks = [
            ("max_operations", self.max_operations >= 1, "at least 1"),
            ("temperature", self.temperature > 0, "positive"),
            ("dedup_threshold", 0.0 < self.dedup_threshold <= 1.0, "in (0, 1]"),
            ("verification_retries", self.verification_retries >= 0, "non-negative"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("shard_size", self.shard_size >= 1, "at least 1"),
            ("max_seeds", self.max_seeds is None or self.max_seeds >= 1, "at least 1 (or unset)"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"`{name}` must be {expected}, got {getattr(self, name)!r}.")
        self.check_rewards()
        if self.push_to_hub and not self.hub_dataset_id:
            raise ValueError("`push_to_hub` needs `hub_dataset_id` (e.g. `your-name/my-instructions`).")
        self.parse_roles(("rewriter", "reviewer", "expert"))
