"""
The operation environment as a TRL `GRPOTrainer(environment_factory=...)` environment: an LLM (the *instructor*)
evolves a seed instruction by calling one tool per operation, and the environment scores the episode with the reward
functions of the PPO trainer.

TRL reads the tools from the environment's *class* (`inspect.getmembers(type(env))`), one per public method, with a
schema made by `transformers.get_json_schema` from the type hints and the Google-style docstring. The operations are
data (user operations from YAML included), so the tool methods are generated: [`environment_class`] makes a subclass
of [`InstructionEnvironment`] with one method per operation of the library.
"""

from collections.abc import Callable

import torch

from ..backends.accounting import QueryAccounting
from ..backends.base import Reviewer, Rewriter
from ..backends.run_statistics import RunStatistics
from ..environment import STOP_ACTION, Evolution, InstructionEnv
from ..operations import Operation, OperationLibrary
from ..rewards.scoring import reward_func_name, weighted_rewards
from .prefetch import PrefetchedReviewer, PrefetchedRewriter


# What the instructor is asked before each seed (its chat turn); the environment appends the seed to it
DEFAULT_TASK_PROMPT = "Improve the instruction with the tools, one call at a time, then call stop."
# The settings a trained instructor is saved with (its tools and task prompt), read back to play it
INSTRUCTOR_FILE = "instructor.json"


# Methods TRL treats as the protocol, not as tools: an operation may not take these names
_PROTOCOL_METHODS = ("reset", "get_reward")


def check_tool_names(operations: OperationLibrary) -> None:
    """Raises a `ValueError` for an operation whose name cannot be a tool of the environment."""
    for name in operations.names:
        if name in _PROTOCOL_METHODS or name.startswith("_") or name in dir(InstructionEnvironment):
            raise ValueError(
                f"Operation {name!r} cannot be a tool of the instructor's environment: TRL exposes public methods as "
                f"tools and {name!r} is taken or private. Rename the operation (names such as "
                f"{', '.join(_PROTOCOL_METHODS)} and those starting with `_` are reserved)."
            )


class InstructionEnvironment:
    r"""
    One episode of the instructor, for [`~trl.GRPOTrainer`]'s `environment_factory`. Build instances with
    [`InstructionEnvironmentFactory`], whose generated subclass adds one tool per operation.

    `reset(instruction=...)` starts an episode from the row's seed instruction alone, so the `num_generations`
    completions of a group all start from the same state. Each operation tool sends the current instruction to the
    rewriter, applies the elimination rules and asks the reviewer, through an
    [`~instrl_trl.environment.InstructionEnv`] (which counts every query per role); it returns the new instruction,
    or why the rewrite was rejected. `stop` ends the episode. `get_reward()` is the episode's sum of the step rewards
    of the PPO trainer (same functions, same weights), plus `stop_reward` when the instructor ended the episode with
    `stop` rather than with plain text.

    Args:
        factory ([`InstructionEnvironmentFactory`]):
            What the episodes share: operations, roles, reward functions, query accounting and statistics.
    """

    def __init__(self, factory: "InstructionEnvironmentFactory"):
        self._factory = factory
        # Stand-ins that answer from what a `ToolCallPrefetcher` fetched ahead, if anything, else ask the roles
        self._env = InstructionEnv(
            factory.operations,
            PrefetchedRewriter(factory.rewriter),
            PrefetchedReviewer(factory.reviewer),
            max_operations=factory.max_operations,
            accounting=factory.accounting,
            seed=factory.seed,
        )
        self._reward = 0.0
        self._returns_at_acceptance: list[float] = []
        self._stopped = False
        self._recorded = False
        self._queries = 0

    def reset(self, **row) -> str:
        """Starts an episode from the row's seed instruction and returns the text appended to the user's prompt."""
        column = self._factory.instruction_column
        instruction = row.get(column)
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError(
                f"The row has no instruction in column `{column}` (got {instruction!r}; columns: {sorted(row)}). "
                "Set `instruction_column` to the column holding the seed instructions."
            )
        self._env.reset([instruction])
        self._reward = 0.0
        self._returns_at_acceptance = []
        self._stopped = False
        self._recorded = False
        self._queries = 0
        # TRL appends this to the last user message without a separator
        return f"\nInstruction: {instruction}"

    @property
    def _episode(self):
        return self._env.episodes[0]

    def _score(self, action: str):
        result = self._env.step([action])
        rewards, _ = weighted_rewards(
            self._factory.reward_funcs,
            self._factory.reward_weights,
            result.instructions,
            result.new_instructions,
            **result.reward_kwargs(),
        )
        self._reward += rewards[0].item()
        self._queries += result.queries[0]
        if result.accepted[0]:
            self._returns_at_acceptance.append(self._reward)
        return result

    def _apply(self, name: str) -> str:
        episode = self._episode
        if episode.done:
            raise ValueError(f"The episode has ended ({episode.end_reason}); answer without calling a tool.")
        result = self._score(name)
        if result.elimination[0] is not None:
            message = f"Rejected: {result.elimination[0]}."
        elif result.accepted[0]:
            message = f"New instruction: {episode.instruction}"
        else:
            message = "Rejected: no new information. Instruction unchanged."
        if episode.end_reason == "max_operations":
            message += " No operations left: call stop."
        elif episode.done:
            message += " The episode has ended."
        return message

    def stop(self) -> str:
        """
        Ends the episode: the current instruction is the result.

        Returns:
            The final instruction.
        """
        episode = self._episode
        if not episode.done:
            self._score(STOP_ACTION)
        self._stopped = True
        return f"Final instruction: {episode.instruction}"

    def get_reward(self) -> float:
        """The episode's reward; also records the episode once in the shared statistics."""
        episode = self._episode
        ended_by_elimination = (episode.end_reason or "").startswith("elimination")
        reward = self._reward + (self._factory.stop_reward if self._stopped and not ended_by_elimination else 0.0)
        if not self._recorded:
            self._recorded = True
            self._factory.statistics.add_episode(
                operations=episode.history,
                num_accepted=len(episode.accepted),
                stopped=self._stopped,
                reward=reward,
                num_queries=self._queries,
            )
        return reward

    @property
    def operations(self) -> tuple[str, ...]:
        """Operations applied so far in this episode (a property: TRL exposes methods only)."""
        return tuple(self._episode.history)

    @property
    def instruction(self) -> str:
        """The current instruction."""
        return self._episode.instruction

    @property
    def accepted(self) -> list[Evolution]:
        """The accepted evolved instructions of this episode, with the operations that made each."""
        return list(self._episode.accepted)

    @property
    def returns_at_acceptance(self) -> list[float]:
        """The episode's summed step rewards up to and including each accepted step (one per `accepted`)."""
        return list(self._returns_at_acceptance)

    @property
    def failed_queries(self) -> int:
        """Rewrites and reviews of this episode that got no answer from their backend (after its retries)."""
        return self._episode.failed_queries

    @property
    def stopped(self) -> bool:
        """Whether the instructor called `stop`."""
        return self._stopped


def _tool_method(operation: Operation) -> Callable[[InstructionEnvironment], str]:
    # `self` stays unannotated: `get_json_schema` would try to turn its type into a JSON schema
    def tool(self) -> str:
        return self._apply(operation.name)

    tool.__name__ = operation.name
    tool.__qualname__ = f"InstructionEnvironment.{operation.name}"
    description = " ".join(operation.description.split()) or f"Apply the {operation.name} operation."
    # `transformers.get_json_schema` reads the description and the `Returns:` section of this docstring
    tool.__doc__ = f"""
        {description}

        Returns:
            The new instruction, or why the rewrite was rejected.
        """
    return tool


def environment_class(operations: OperationLibrary) -> type[InstructionEnvironment]:
    """A subclass of [`InstructionEnvironment`] with one tool method per operation, named after it."""
    check_tool_names(operations)
    methods = {operation.name: _tool_method(operation) for operation in operations.values()}
    # Same class name: TRL names the environment's reward column after it
    return type("InstructionEnvironment", (InstructionEnvironment,), {**methods, "__module__": __name__})


class InstructionEnvironmentFactory:
    r"""
    The `environment_factory` of [`~trl.GRPOTrainer`]: each call returns a new [`InstructionEnvironment`] (TRL keeps a
    pool, one per rollout, and resets them). The instances share the roles, the reward functions (the novelty reward
    remembers every accepted instruction of the run), the [`QueryAccounting`] and the episode totals
    ([`~instrl_trl.backends.run_statistics.RunStatistics`], the class the PPO trainer keeps too).

    Args:
        operations ([`OperationLibrary`]):
            The operations, one tool each (user operations included).
        rewriter ([`Rewriter`]), reviewer ([`Reviewer`]):
            The roles that apply operations and judge information gain.
        reward_funcs (`list[Callable]`):
            Step reward functions, as in the PPO trainer (`fn(instructions, new_instructions, **episode_fields)`).
        reward_weights (`list[float]`, *optional*):
            One weight per reward function; all `1.0` by default.
        max_operations (`int`, *optional*, defaults to `6`):
            Operations after which the episode ends.
        stop_reward (`float`, *optional*, defaults to `0.0`):
            Added to the reward of an episode the instructor ends with `stop` (not after an elimination).
        seed (`int`, *optional*, defaults to `0`):
            Run seed mixed into every rewrite's seed.
        instruction_column (`str`, *optional*, defaults to `"instruction"`):
            Row field that holds the seed instruction.
        accounting ([`QueryAccounting`], *optional*):
            Where queries are counted; a new one by default.
    """

    def __init__(
        self,
        operations: OperationLibrary,
        rewriter: Rewriter,
        reviewer: Reviewer,
        reward_funcs: list[Callable],
        reward_weights: list[float] | None = None,
        max_operations: int = 6,
        stop_reward: float = 0.0,
        seed: int = 0,
        instruction_column: str = "instruction",
        accounting: QueryAccounting | None = None,
    ):
        if not reward_funcs:
            raise ValueError("`reward_funcs` is empty; give at least one step reward function.")
        if reward_weights is not None and len(reward_weights) != len(reward_funcs):
            names = [reward_func_name(func) for func in reward_funcs]
            raise ValueError(
                f"`reward_weights` has {len(reward_weights)} values for {len(reward_funcs)} reward functions "
                f"({names}); give one weight per function."
            )
        self.environment_class = environment_class(operations)
        self.operations = operations
        self.rewriter = rewriter
        self.reviewer = reviewer
        self.reward_funcs = list(reward_funcs)
        weights = reward_weights if reward_weights is not None else [1.0] * len(reward_funcs)
        self.reward_weights = torch.tensor(weights, dtype=torch.float32)
        self.max_operations = max_operations
        self.stop_reward = stop_reward
        self.seed = seed
        self.instruction_column = instruction_column
        self.accounting = accounting if accounting is not None else QueryAccounting()
        self.statistics = RunStatistics([*operations.names, STOP_ACTION])
        # Fails here, before any query, on an operation the rewriter cannot apply
        self.environment_class(self)

    @property
    def tool_names(self) -> list[str]:
        """The tools of every environment, in TRL's (sorted) order."""
        return sorted([*self.operations.names, STOP_ACTION])

    def __call__(self) -> InstructionEnvironment:
        return self.environment_class(self)
