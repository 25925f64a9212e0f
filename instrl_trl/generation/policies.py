"""
What chooses the operations of the generation stage, by `policy` kind: a PPO operation policy (a sequence classifier
from `train-policy`), an instructor (a causal LM from `train-instructor` that calls one tool per operation), or a
baseline that needs no training (`uniform`, `no_repeat`, `sequence:<op>,<op>`, and `bandit`, which learns online).
Each kind evolves a batch of seeds into the same [`Candidate`]s through [`GenerationPolicy.evolve`], with the
generation's roles and [`QueryAccounting`], so rows, cards and query counts do not depend on the kind.
"""

import json
import warnings
from collections.abc import Callable
from functools import partial

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import cached_file

from ..environment import STOP_ACTION, InstructionEnv
from ..operations import OperationLibrary, build_operation_library
from ..policies.baselines import build_baseline_policy
from ..policies.instructor import choose_operations_with_instructor
from ..policy import act, act_each
from ..tool_environment import DEFAULT_TASK_PROMPT, INSTRUCTOR_FILE, InstructionEnvironmentFactory
from .bandit_policy import BanditPolicy
from .evolution_setup import EvolutionSetup, EvolvedBatch, GenerationPolicy
from .evolve import episode_candidates, evolve_seeds


__all__ = [
    "ActPolicy", "BanditPolicy", "EvolutionSetup", "EvolvedBatch", "GenerationPolicy", "InstructorPolicy", "PPOPolicy",
    "baseline_policy", "describe_policy", "load_generation_policy", "policy_kind",
]  # fmt: skip
POLICY_KINDS = ("ppo", "instructor", "uniform", "no_repeat", "sequence", "bandit")
# Kinds named by the value of `policy` itself rather than by a model
BASELINE_KINDS = ("uniform", "no_repeat", "sequence", "bandit")
_KINDS_HELP = (
    "an operation policy saved by `instrl-trl train-policy` (a sequence classifier whose labels end with 'stop'), an "
    "instructor saved by `instrl-trl train-instructor` (a causal LM with a chat template), 'uniform' (Evol-Instruct's "
    "uniform-random operations), 'no_repeat' (random operations never repeated in an episode, then stop) or "
    "'sequence:<op>,<op>,...' (a fixed sequence of operations) or 'bandit' (Thompson sampling over operations per "
    "question or task, learning from the reviewer's verdicts as it generates; 'bandit:blind' without the feature)"
)


class ActPolicy(GenerationPolicy):
    r"""
    A policy that picks one operation id per state (an [`~instrl_trl.policy.ActFn`]): the PPO operation policy and the
    baselines. `make_act_fn(setup, seed)` binds it for one batch, its sampling seeded with `seed`.
    """

    def __init__(self, kind: str, operations: OperationLibrary, make_act_fn: Callable):
        self.kind = kind
        self.operations = operations
        self._make_act_fn = make_act_fn
        self._env: tuple[EvolutionSetup, InstructionEnv] | None = None

    def evolve(self, setup: EvolutionSetup, seeds: list[str], seed_indices: list[int]) -> EvolvedBatch:
        # One environment per setup: `reset` starts each batch afresh
        if self._env is None or self._env[0] is not setup:
            self._env = (setup, setup.environment(self.operations))
        env = self._env[1]
        act_fn = self._make_act_fn(setup, setup.seed + seed_indices[0])
        candidates = evolve_seeds(env, act_fn, seeds, seed_indices, setup.score, setup.keep_intermediate)
        failed = {seed_indices[i] for i, episode in enumerate(env.episodes) if episode.failed_queries}
        return EvolvedBatch(candidates, failed)

    def episode_actor(self, setup: EvolutionSetup, seed_index: int):
        """
        What picks the operations of one episode in the pipelined stage: its own act function, sampling from a stream
        seeded by `setup.seed + seed_index` alone, so that its choices do not depend on the other episodes in flight.
        """
        return self._make_act_fn(setup, setup.seed + seed_index)

    def act_episodes(self, setup: EvolutionSetup, states: list[str], actors: list) -> list[int]:
        """One action id per state, state `i` being the current state of the episode of `actors[i]`."""
        return [int(actor([state])[0][0]) for state, actor in zip(states, actors, strict=True)]


class PPOPolicy(ActPolicy):
    r"""
    The operation policy trained by `train-policy`: a sequence classifier whose labels are `operations` then `stop`.

    Args:
        model ([`~transformers.PreTrainedModel`]), tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            The policy and its tokenizer.
        operations ([`OperationLibrary`]):
            The operations of its labels, in label order.
        max_length (`int`, *optional*, defaults to `128`):
            Tokens of a state the policy reads (training's `max_state_length` reads as it was trained).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        operations: OperationLibrary,
        max_length: int = 128,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

        def make_act_fn(setup: EvolutionSetup, seed: int):
            return partial(act, model, tokenizer, max_length=max_length, greedy=setup.greedy,
                           generator=torch.Generator().manual_seed(seed), temperature=setup.temperature)  # fmt: skip

        super().__init__("ppo", operations, make_act_fn)

    def episode_actor(self, setup: EvolutionSetup, seed_index: int) -> torch.Generator:
        return torch.Generator().manual_seed(setup.seed + seed_index)

    def act_episodes(self, setup: EvolutionSetup, states: list[str], actors: list[torch.Generator]) -> list[int]:
        # Forward passes over the ready episodes, each sampled from its own generator. Padding to other states'
        # lengths moves the probabilities by float rounding only; a draw that close to a boundary is settled by the
        # state's own pass, so an episode's actions do not depend on which episodes were ready with it
        return act_each(self.model, self.tokenizer, states, actors, max_length=self.max_length, greedy=setup.greedy,
                        temperature=setup.temperature)  # fmt: skip


class InstructorPolicy(GenerationPolicy):
    r"""
    An instructor: a causal LM that evolves each seed by calling one tool per operation (and `stop`), in an
    [`~instrl_trl.tool_environment.InstructionEnvironment`] whose rewriter, reviewer, query accounting and rewards
    are the generation's.

    Args:
        model ([`~transformers.PreTrainedModel`]), tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            The instructor and its tokenizer (with a tool-calling chat template).
        operations ([`OperationLibrary`]):
            Its tools.
        task_prompt (`str`, *optional*):
            The user message it was trained with.
    """

    kind = "instructor"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        operations: OperationLibrary,
        task_prompt: str = DEFAULT_TASK_PROMPT,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.operations = operations
        self.task_prompt = task_prompt
        self._factory: tuple[EvolutionSetup, InstructionEnvironmentFactory] | None = None

    def environment_factory(self, setup: EvolutionSetup) -> InstructionEnvironmentFactory:
        """The episodes' environments, sharing the generation's roles, rewards and query accounting."""
        if self._factory is None or self._factory[0] is not setup:
            factory = InstructionEnvironmentFactory(
                self.operations,
                setup.rewriter,
                setup.reviewer,
                setup.reward_funcs,
                reward_weights=setup.reward_weights.tolist(),
                max_operations=setup.max_operations,
                seed=setup.seed,
                accounting=setup.accounting,
            )
            self._factory = (setup, factory)
        return self._factory[1]

    def evolve(self, setup: EvolutionSetup, seeds: list[str], seed_indices: list[int]) -> EvolvedBatch:
        factory = self.environment_factory(setup)
        if not setup.greedy:
            torch.manual_seed(setup.seed + seed_indices[0])  # `generate` samples from torch's global generator
        episodes = choose_operations_with_instructor(
            self.model, self.tokenizer, seeds, factory, task_prompt=self.task_prompt,
            do_sample=not setup.greedy, temperature=setup.temperature,
        )  # fmt: skip
        candidates = []
        for episode, seed_index in zip(episodes, seed_indices, strict=True):
            candidates.extend(episode_candidates(episode.seed, seed_index, episode.accepted,
                                                 episode.returns_at_acceptance, setup.keep_intermediate))  # fmt: skip
        failed = {index for episode, index in zip(episodes, seed_indices, strict=True) if episode.failed_queries}
        return EvolvedBatch(candidates, failed)


def policy_kind(policy: str) -> str:
    """
    The kind of `policy` (one of [`POLICY_KINDS`]), read from its name or its model config alone. Anything else raises
    a `ValueError` naming `policy` and the valid kinds.
    """
    if policy in ("uniform", "no_repeat", "bandit", "bandit:blind") or policy.startswith("sequence:"):
        return policy.split(":", 1)[0]
    try:
        config = AutoConfig.from_pretrained(policy)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"`policy` {policy!r} is not a model folder or Hub id that loads ({error}). It must be {_KINDS_HELP}."
        ) from error
    labels = [config.id2label[i] for i in sorted(config.id2label)] if config.id2label else []
    architectures = config.architectures or []
    if labels and labels[-1] == STOP_ACTION:
        return "ppo"
    if any(name.endswith("ForCausalLM") for name in architectures):
        return "instructor"
    raise ValueError(
        f"`policy` {policy!r} is neither kind of trained policy: its architectures are {architectures} and its labels "
        f"{labels}. It must be {_KINDS_HELP}."
    )


def describe_policy(policy: str) -> str:
    """How the dataset card names a policy that has no Hub id (a local folder or a baseline)."""
    kind = policy_kind(policy)
    if kind == "sequence":
        return f"the fixed operation sequence `{policy.removeprefix('sequence:')}` (no training)"
    return {
        "ppo": "a local operation policy (PPO)",
        "instructor": "a local instructor (an LLM choosing the operations by tool calls, trained with GRPO)",
        "uniform": "uniform-random operations (the Evol-Instruct baseline, no training)",
        "no_repeat": "random operations, none repeated within an episode, until all were applied (no training)",
        "bandit": "a Thompson-sampling bandit over operations per question or task, learning from the reviewer's "
        "verdicts while generating (no training stage)",
    }[kind]


def load_generation_policy(policy: str, operations_file: str | None = None) -> GenerationPolicy:
    """
    Loads `policy` as the generation policy of its kind ([`policy_kind`]); `operations_file` adds the user operations
    it was trained with. Operations it names that are not defined raise a `ValueError` listing the valid ones.
    """
    kind = policy_kind(policy)
    library = build_operation_library(extra=operations_file)
    if kind == "ppo":
        return _load_ppo_policy(policy, library)
    if kind == "instructor":
        return _load_instructor(policy, library)
    return baseline_policy(policy, library)


def baseline_policy(policy: str, operations: OperationLibrary) -> GenerationPolicy:
    """
    The policy that needs no training named by `policy` (`"uniform"`, `"no_repeat"`, `"sequence:a,b"`, `"bandit"`,
    `"bandit:blind"`) over `operations`. A bad name or sequence raises a `ValueError` here, before any query.
    """
    if policy in ("bandit", "bandit:blind"):
        return BanditPolicy(operations, use_features=policy == "bandit")
    action_names = [*operations.names, STOP_ACTION]
    build_baseline_policy(policy, action_names)

    def make_act_fn(setup: EvolutionSetup, seed: int):
        return build_baseline_policy(policy, action_names, seed=seed)

    return ActPolicy(policy.split(":", 1)[0], operations, make_act_fn)


def _check_known(policy: str, names: list[str], library: OperationLibrary) -> None:
    unknown = [name for name in names if name not in library]
    if unknown:
        raise ValueError(
            f"The policy {policy!r} chooses operations {unknown} that are not defined. Known operations: "
            f"{', '.join(library)}. Pass the user operations it was trained with as `operations_file`."
        )


def _load_ppo_policy(policy: str, library: OperationLibrary) -> PPOPolicy:
    model = AutoModelForSequenceClassification.from_pretrained(policy).eval()
    tokenizer = AutoTokenizer.from_pretrained(policy)
    labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    _check_known(policy, labels[:-1], library)
    return PPOPolicy(model, tokenizer, library.select(labels[:-1]))


def _load_instructor(policy: str, library: OperationLibrary) -> InstructorPolicy:
    tokenizer = AutoTokenizer.from_pretrained(policy)
    if not tokenizer.chat_template:
        raise ValueError(
            f"`policy` {policy!r} is a causal LM without a chat template, so it cannot call the operations as tools. "
            "Use an instructor saved by `instrl-trl train-instructor`."
        )
    settings_file = cached_file(policy, INSTRUCTOR_FILE, _raise_exceptions_for_missing_entries=False)
    if settings_file is None:
        warnings.warn(
            f"{policy!r} has no {INSTRUCTOR_FILE}: its tools are all the operations of the library and its prompt the "
            "default task prompt. Instructors saved by `instrl-trl train-instructor` have one.",
            stacklevel=2,
        )
        settings = {}
    else:
        with open(settings_file) as f:
            settings = json.load(f)
    names = settings.get("operations", library.names)
    _check_known(policy, names, library)
    model = AutoModelForCausalLM.from_pretrained(policy).eval()
    return InstructorPolicy(model, tokenizer, library.select(names), settings.get("task_prompt", DEFAULT_TASK_PROMPT))
