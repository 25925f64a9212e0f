import os
from dataclasses import dataclass, field

from ..backends.role_arguments import RoleArguments
from ..data.seeds import SeedColumnArguments
from ..operations.operation_arguments import OperationArguments
from ..rewards.reward_arguments import RewardArguments
from ._trl import _BaseConfig
from .training_defaults import OperationTrainingDefaults


@dataclass
class InstructionGenerationConfig(
    OperationTrainingDefaults, _BaseConfig, SeedColumnArguments, OperationArguments, RoleArguments, RewardArguments
):
    r"""
    Configuration class for the [`InstructionGenerationTrainer`].

    This class includes only the parameters that are specific to learning operation policies. For a full list of
    training arguments, please refer to the [`~transformers.TrainingArguments`] documentation. Batch sizes count
    *seed instructions*: each seed gives one episode of up to `max_operations` steps. The seed column
    (`instruction_column`), the operations (`operations`, `operations_file`, `max_operations`), the roles (`rewriter`,
    `reviewer`, `response_cache`) and the rewards (`reward_funcs`, `reward_weights`, `embedding_model`) are the fields
    of [`~instrl_trl.data.seeds.SeedColumnArguments`],
    [`~instrl_trl.operations.operation_arguments.OperationArguments`],
    [`~instrl_trl.backends.role_arguments.RoleArguments`] and [`~instrl_trl.rewards.reward_arguments.RewardArguments`],
    shared with the `generate` stage and (but for `reward_weights`) with the instructor's [`InstructorConfig`].

    Parameters:
        > Parameters that control the model and the seeds

        model_init_kwargs (`dict[str, Any]`, *optional*):
            Keyword arguments for [`~transformers.AutoModelForSequenceClassification.from_pretrained`], used when the
            `model` argument of the [`InstructionGenerationTrainer`] is a string.
        max_state_length (`int`, *optional*, defaults to `128`):
            Maximum number of tokens of a policy state (operation history + instruction); longer states are
            truncated.

        > Parameters that control the rollouts

        steps_per_generation (`int`, *optional*):
            Number of micro-steps that share one rollout. Defaults to `gradient_accumulation_steps`. Only one of
            `steps_per_generation` and `generation_batch_size` can be set.
        generation_batch_size (`int`, *optional*):
            Number of seeds per rollout, over all processes. Defaults to `per_device_train_batch_size *
            num_processes * steps_per_generation`.
        num_iterations (`int`, *optional*, defaults to `4`):
            Number of PPO epochs over each rollout (`ppo_epochs` in PPO).
        rollout_temperature (`float`, *optional*, defaults to `1.0`):
            Temperature of the policy's softmax while collecting rollouts.
        pipelined_rollouts (`bool`, *optional*, defaults to `True`):
            When the rewriter or the reviewer is an endpoint, advance each episode of a rollout as soon as its own
            queries return, so that all the rollout's episodes keep queries in flight (up to the server's
            `max_concurrency`). The rollout is the one lock-step steps give (`False`: every step waits for the
            batch's slowest query), whatever the server's timing. Local roles (the rules engine, a transformers model)
            always play lock-step steps, which batch their queries. A pipelined rollout runs the policy's forward pass
            twice per state (once to pick the action as the episode is ready, once with its whole step): with a
            MiniLM-sized policy on a CPU that work, not the server, sets the rollout's length, and `False` is faster.
        rollouts_ahead (`int`, *optional*, defaults to `0`):
            With pipelined rollouts at an endpoint, the number of later rollouts whose episodes run while PPO trains on
            this one, so that the server is not left with the ended episodes' empty slots at the end of each rollout
            and with nothing to do during each update. A rollout is then played by the policy `rollouts_ahead`
            updates older than the one PPO starts from (the first ones by the initial policy): off-policy by that many
            updates, as asynchronous PPO and GRPO trainers allow (TRL's async GRPO keeps samples up to 4 updates old);
            PPO's ratio uses the log-probabilities of the policy that played the rollout. Runs stay deterministic and
            resumable. `0` plays each rollout on-policy, when PPO needs it. A rollout with no more episodes than
            `max_concurrency` ends at its longest episode and fills a fraction of the slots: 3 rollouts ahead kept
            such a server 0.82-0.84 busy where the policy's compute was not the limit (see
            `benchmarks/server_utilization.py`; with MiniLM training on a 2-core CPU, the PPO update is the limit and
            rollouts ahead do not help). Cannot be combined with `query_budget`
            (the budget would stop training with later rollouts' queries spent) nor with DeepSpeed ZeRO-3 or FSDP
            (a rollout ahead plays a full copy of the policy).

        > Parameters that control the PPO loss

        gamma (`float`, *optional*, defaults to `0.995`):
            Discount factor, as in the paper.
        gae_lambda (`float`, *optional*, defaults to `0.97`):
            Lambda of generalized advantage estimation (`lam` in PPO), as in the paper.
        epsilon (`float`, *optional*, defaults to `0.2`):
            Clipping range of the probability ratio (`clip_range` in PPO).
        epsilon_high (`float`, *optional*):
            Upper clipping range; defaults to `epsilon`.
        vf_coef (`float`, *optional*, defaults to `0.5`):
            Weight of the value loss.
        value_clip (`float`, *optional*):
            Clip the value prediction to this distance from the rollout's value (PPO's `cliprange_value`); no clipping
            by default.
        entropy_coef (`float`, *optional*, defaults to `0.01`):
            Weight of the entropy bonus.
        beta (`float`, *optional*, defaults to `0.0`):
            KL coefficient against the initial policy (a frozen copy, kept only when `beta > 0`).
        normalize_advantage (`bool`, *optional*, defaults to `True`):
            Whether to normalize the advantages of each rollout to zero mean and unit variance.

        > Parameters that control the rewards and the query cost

        query_budget (`int`, *optional*):
            Total number of LLM queries (all roles, all processes) after which training stops. No limit by default.
        cost_target (`float`, *optional*):
            Target of the LLM queries per accepted evolution. When set, a Lagrange multiplier on the
            query cost rises while the target is exceeded and falls otherwise (a constrained-RL penalty, as in
            PCRPO).
        cost_multiplier_lr (`float`, *optional*, defaults to `0.05`):
            Step size of the Lagrange multiplier update, once per rollout.

    > [!NOTE]
    > These parameters have default values different from [`~transformers.TrainingArguments`]:
    > - `gradient_checkpointing` (unset, so off), `bf16` (`True` on a bf16-capable GPU, else `False`) and
    >   `dataloader_pin_memory` (`False`): the defaults of both trainers, see [`OperationTrainingDefaults`];
    > - `remove_unused_columns`: `False` (the seed column must reach the trainer);
    > - `ddp_find_unused_parameters`: `False` (the value head is computed inside the forward).
    """

    _VALID_DICT_FIELDS = _BaseConfig._VALID_DICT_FIELDS + ["model_init_kwargs", "rewriter", "reviewer"]

    # Parameters whose default values are overridden from TrainingArguments
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep False: the trainer reads the seed column itself."},
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={
            "help": "Passed to DDP. False by default: the value head runs inside the policy's forward, so every "
            "parameter is used, and True costs an extra traversal of the graph every step."
        },
    )

    # Parameters that control the model and the seeds
    model_init_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "Keyword arguments for `from_pretrained` when `model` is a string."},
    )
    max_state_length: int = field(
        default=128,
        metadata={"help": "Maximum number of tokens of a policy state (operation history + instruction)."},
    )

    # Parameters that control the rollouts
    steps_per_generation: int | None = field(
        default=None,
        metadata={"help": "Number of micro-steps that share one rollout. Defaults to `gradient_accumulation_steps`."},
    )
    generation_batch_size: int | None = field(
        default=None,
        metadata={"help": "Number of seeds per rollout, over all processes."},
    )
    num_iterations: int = field(
        default=4, metadata={"help": "Number of PPO epochs over each rollout (`ppo_epochs` in PPO)."}
    )
    rollout_temperature: float = field(
        default=1.0, metadata={"help": "Temperature of the policy's softmax while collecting rollouts."}
    )
    pipelined_rollouts: bool = field(
        default=True,
        metadata={"help": "With an endpoint role, advance each episode as its own queries return (False: lock-step)."},
    )
    rollouts_ahead: int = field(
        default=0,
        metadata={
            "help": "Later rollouts played while PPO trains on this one (each by the policy that many updates "
            "older), so that an endpoint never runs out of queries between rollouts. 0: on-policy."
        },
    )

    # Parameters that control the PPO loss
    gamma: float = field(default=0.995, metadata={"help": "Discount factor, as in the paper."})
    gae_lambda: float = field(
        default=0.97, metadata={"help": "Lambda of generalized advantage estimation (`lam` in PPO)."}
    )
    epsilon: float = field(
        default=0.2, metadata={"help": "Clipping range of the probability ratio (`clip_range` in PPO)."}
    )
    epsilon_high: float | None = field(
        default=None, metadata={"help": "Upper clipping range of the ratio; defaults to `epsilon`."}
    )
    vf_coef: float = field(default=0.5, metadata={"help": "Weight of the value loss."})
    value_clip: float | None = field(
        default=None, metadata={"help": "Clip the value prediction to this distance from the rollout's value."}
    )
    entropy_coef: float = field(default=0.01, metadata={"help": "Weight of the entropy bonus."})
    beta: float = field(
        default=0.0,
        metadata={"help": "KL coefficient against the initial policy (a frozen copy is kept only when > 0)."},
    )
    normalize_advantage: bool = field(
        default=True, metadata={"help": "Normalize each rollout's advantages to zero mean and unit variance."}
    )

    # Parameters that control the rewards and the query cost
    query_budget: int | None = field(
        default=None,
        metadata={"help": "Total number of LLM queries after which training stops. No limit by default."},
    )
    cost_target: float | None = field(
        default=None,
        metadata={
            "help": "Target of the LLM queries per accepted evolution; enables a Lagrange multiplier on the "
            "query cost."
        },
    )
    cost_multiplier_lr: float = field(
        default=0.05, metadata={"help": "Step size of the Lagrange multiplier update, once per rollout."}
    )

    def __getstate__(self) -> dict:
        # `Trainer` pickles its arguments into `training_args.bin`, which `push_to_hub` uploads: never the token.
        return {**self.__dict__, "hub_token": None}

    @property
    def response_cache_file(self) -> str:
        """`response_cache`, or its default `<output_dir>/response_cache.sqlite`."""
        if self.response_cache is not None:
            return self.response_cache
        return os.path.join(self.output_dir, "response_cache.sqlite")

    def __post_init__(self):
        self.resolve_bf16()
        super().__post_init__()
        self._check_values()
        if str(getattr(self.eval_strategy, "value", self.eval_strategy)) != "no":
            raise ValueError(
                f"`eval_strategy` is {self.eval_strategy!r}, but the trainer has no evaluation loop: a policy's "
                "quality is its query cost on seeds it did not train on. Leave `eval_strategy` at 'no' and measure "
                "the saved policy with `instrl_trl.generation.policy_evaluation.evaluate_policy` or "
                "`benchmarks/query_efficiency.py`."
            )
        num_processes = self.world_size
        if self.generation_batch_size is not None and self.steps_per_generation is not None:
            raise ValueError(
                "`generation_batch_size` and `steps_per_generation` cannot both be set; set one and the other is "
                "derived from `per_device_train_batch_size * num_processes`."
            )
        if self.generation_batch_size is None:
            if self.steps_per_generation is None:
                self.steps_per_generation = self.gradient_accumulation_steps
            self.generation_batch_size = self.per_device_train_batch_size * num_processes * self.steps_per_generation
        else:
            per_step = self.per_device_train_batch_size * num_processes
            if self.generation_batch_size % per_step != 0:
                raise ValueError(
                    f"`generation_batch_size` ({self.generation_batch_size}) must be divisible by "
                    f"`per_device_train_batch_size * num_processes` ({per_step}); set it to a multiple of {per_step}."
                )
            self.steps_per_generation = self.generation_batch_size // per_step

    def _check_values(self):
        checks = [
            ("max_operations", self.max_operations >= 1, "at least 1"),
            ("max_state_length", self.max_state_length >= 8, "at least 8"),
            ("num_iterations", self.num_iterations >= 1, "at least 1"),
            ("rollouts_ahead", self.rollouts_ahead >= 0, "0 (on-policy) or more"),
            ("rollout_temperature", self.rollout_temperature > 0, "positive"),
            ("gamma", 0.0 < self.gamma <= 1.0, "in (0, 1]"),
            ("gae_lambda", 0.0 <= self.gae_lambda <= 1.0, "in [0, 1]"),
            ("epsilon", self.epsilon > 0, "positive"),
            ("epsilon_high", self.epsilon_high is None or self.epsilon_high > 0, "positive"),
            ("vf_coef", self.vf_coef >= 0, "non-negative"),
            ("entropy_coef", self.entropy_coef >= 0, "non-negative"),
            ("beta", self.beta >= 0, "non-negative"),
            ("query_budget", self.query_budget is None or self.query_budget > 0, "a positive number of queries"),
            ("cost_target", self.cost_target is None or self.cost_target > 0, "positive (or unset)"),
            ("cost_multiplier_lr", self.cost_multiplier_lr > 0, "positive"),
            (
                "steps_per_generation",
                self.steps_per_generation is None or self.steps_per_generation >= 1,
                "at least 1",
            ),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"`{name}` must be {expected}, got {getattr(self, name)!r}.")
        if self.rollouts_ahead and not self.pipelined_rollouts:
            raise ValueError(
                f"`rollouts_ahead` is {self.rollouts_ahead}: later rollouts' episodes would run beside this one's, "
                "which lock-step rollouts (`pipelined_rollouts: false`) cannot do: set `pipelined_rollouts: true` or "
                "`rollouts_ahead: 0`."
            )
        if self.rollouts_ahead and self.query_budget is not None:
            raise ValueError(
                f"`rollouts_ahead` is {self.rollouts_ahead}: later rollouts are played while PPO trains on this one, "
                "so `query_budget` would stop training with their queries spent and never trained on: unset "
                "`query_budget` (bound the run with `max_steps`) or set `rollouts_ahead: 0`."
            )
        self.parse_roles()
        self.check_rewards()
