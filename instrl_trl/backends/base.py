"""
The contract between the environment and whatever generates text for the three roles.

A *rewriter* applies an operation to an instruction, a *reviewer* judges whether the result adds information, an
*expert* answers instructions. Each role is batch in, batch out. The offline rules engine (`rules/`) and the LLM
backends implement the same three classes, and every call is counted by the environment as one query per item.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ..constraints import Constraint
from ..operations.operation import Operation


@dataclass(frozen=True)
class Usage:
    r"""
    What one query cost, as reported by an LLM backend (the rules engine reports none).

    Parameters:
        cached (`bool`, *optional*, defaults to `False`):
            The answer came from the response cache: no new query was paid for.
        failed (`bool`, *optional*, defaults to `False`):
            The query failed (after retries) or its answer could not be parsed.
        prompt_tokens (`int`, *optional*, defaults to `0`), completion_tokens (`int`, *optional*, defaults to `0`):
            Token counts reported by the backend.
        seconds (`float`, *optional*, defaults to `0.0`):
            Wall time spent on the query (its share of a batch for batched backends).
    """

    cached: bool = False
    failed: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Generation:
    r"""
    One completion from a [`TextGenerator`].

    Parameters:
        text (`str` or `None`):
            The completion, `None` when the query failed.
        usage ([`Usage`]):
            What it cost.
        finish_reason (`str` or `None`, *optional*, defaults to `None`):
            Why the model stopped, in the chat-completions words: `"stop"` (an end of sequence or a stop string) or
            `"length"` (the length limit, so that the text may end mid-sentence); `None` when the backend does not
            say.
    """

    text: str | None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None


# A prompt is one user message, or a whole chat (`[{"role": "system", "content": ...}, {"role": "user", ...}]`) when
# a role needs a system message of its own
Prompt = str | Sequence[Mapping[str, str]]

# How a reviewer gets a verdict with a probability: `likelihood` scores the verdicts' texts with a local model (one
# forward pass), `logprobs` reads the first token's top log-probabilities from an endpoint, `choice` asks the server
# to answer only with one of them (vLLM `structured_outputs`, TGI regex grammar), `systemone` asks transformers serve's
# `/v1/systemone`, and `parse` generates freely and parses strictly (the last resort: probability 0 or 1).
VERDICT_MODES = ("likelihood", "logprobs", "choice", "systemone", "parse")


def prompt_messages(prompt: Prompt) -> list[dict[str, str]]:
    """The chat messages of a prompt: a string is one user message."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


@dataclass(frozen=True)
class ChoiceScores:
    r"""
    How likely a model finds each of a fixed set of answers to one prompt.

    Parameters:
        probabilities (`tuple[float, ...]` or `None`):
            One probability per choice, in the order asked, summing to 1; `None` when the query failed or the answer
            matched no choice.
        text (`str` or `None`):
            What the model answered, for logs (the most likely choice when nothing was generated).
        usage ([`Usage`]):
            What it cost.
    """

    probabilities: tuple[float, ...] | None
    text: str | None = None
    usage: Usage = field(default_factory=Usage)


class TextGenerator(ABC):
    """
    A text-generation backend: chat prompts in, completions out, in one batched call. The LLM roles
    ([`LLMRewriter`], [`LLMReviewer`], [`LLMExpert`]) build prompts and parse answers on top of it.

    A backend names its length limit in `max_tokens_key` (`max_new_tokens` for transformers, `max_tokens` for
    OpenAI-style endpoints), so that a role can set its own limit whatever the backend.
    """

    backend: str = "unknown"
    model_name: str = "unknown"
    max_tokens_key: str | None = None
    # The `VERDICT_MODES` that `score_choices` serves, best first (`parse` works with any generator)
    choice_modes: tuple[str, ...] = ()

    def cache_identity(self) -> dict:
        """What makes two generators answer the same prompt alike (part of the response-cache key)."""
        return {"backend": self.backend, "model": self.model_name}

    @classmethod
    def valid_generation_keys(cls) -> frozenset[str] | None:
        """The generation settings this backend takes; `None` (this base class) accepts every key."""
        return None

    # Names other backends use for a setting, with what to write here instead; and the advice for any other unknown key
    generation_key_fixes: ClassVar[dict[str, str]] = {}
    unknown_generation_key_fix: ClassVar[str] = "check the backend's documentation"

    @classmethod
    def check_generation_kwargs(cls, generation_kwargs: dict, where: str = "generation_kwargs") -> None:
        """
        Raises a `ValueError` naming `where.<key>` for a key this backend does not take, with the fix and the valid
        keys, so that a recipe fails before any query is spent.
        """
        valid = cls.valid_generation_keys()
        if valid is None:
            return
        for key in generation_kwargs:
            if key not in valid:
                fix = cls.generation_key_fixes.get(key, cls.unknown_generation_key_fix)
                raise ValueError(
                    f"`{where}.{key}` is not a generation setting of the {cls.backend} backend: {fix}. Valid keys: "
                    f"{', '.join(sorted(valid))}."
                )

    def samples(self, generation_kwargs: dict) -> bool:
        """
        Whether a call with `generation_kwargs` (over the generator's defaults) samples, so that another seed may
        give another answer. Greedy decoding ignores seeds; this base class assumes sampling.
        """
        return True

    def score_choices(self, prompts: list[Prompt], choices: Sequence[str], mode: str) -> list[ChoiceScores]:
        """
        One [`ChoiceScores`] per prompt: the probability of each of `choices` as the whole answer, obtained the way
        `mode` (one of `choice_modes`) says. This base class serves no mode.
        """
        raise ValueError(
            f"The {self.backend} backend cannot score fixed answers (verdict mode {mode!r}); use "
            "`verdict_mode: parse`."
        )

    @abstractmethod
    def generate(self, prompts: list[Prompt], seeds: list[int] | None = None, **generation_kwargs) -> list[Generation]:
        """
        One [`Generation`] per prompt (a user message, or a list of chat messages), in order. Failures are
        `Generation(None, Usage(failed=True))`.

        `seeds`, when given, holds one sampling seed per prompt: when sampling, the same prompt with another seed is
        another query (a retry asks for a new sample), and the same seed asks for the same sample again.
        """


@dataclass(frozen=True)
class RewriteRequest:
    r"""
    One rewrite to perform.

    Parameters:
        instruction (`str`):
            The current instruction.
        operation ([`Operation`]):
            The operation to apply.
        history (`tuple[str, ...]`):
            Names of the operations already applied in this episode, oldest first.
        constraints (`tuple[Constraint, ...]`):
            Verifiable constraints the instruction already carries.
        seed (`int`):
            Seed for any random choice the rewriter makes, so that a rewrite is reproducible.
    """

    instruction: str
    operation: Operation
    history: tuple[str, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class Rewrite:
    r"""
    The result of one rewrite.

    Parameters:
        instruction (`str`):
            The new instruction (unchanged text when the operation could not add anything).
        constraints (`tuple[Constraint, ...]`):
            All verifiable constraints the new instruction carries (the request's plus any added).
        usage ([`Usage`] or `None`):
            What the query cost (`None` for the rules engine).
        cleanups (`tuple[str, ...]`, *optional*, defaults to `()`):
            What was cut from the model's answer to get the instruction (see [`clean_rewrite`]), one reason each.
        rejection (`str` or `None`, *optional*, defaults to `None`):
            An elimination reason the rewriter found itself (e.g. `"constraint_missing"`), which the environment
            applies before its own rules.
    """

    instruction: str
    constraints: tuple[Constraint, ...] = field(default_factory=tuple)
    usage: Usage | None = None
    cleanups: tuple[str, ...] = ()
    rejection: str | None = None


@dataclass(frozen=True)
class Review:
    r"""
    A reviewer's verdict on one rewrite.

    Parameters:
        information_gain (`bool`):
            `True` when the new instruction adds information over the old one ("Not Equal" in the paper).
        verdict (`str`):
            The raw verdict text, kept for logs.
        usage ([`Usage`] or `None`):
            What the query cost (`None` for the rules engine); `usage.failed` when the verdict could not be parsed.
        probability (`float` or `None`, *optional*, defaults to `None`):
            P(information gain) as the reviewer sees it, `None` when it failed or gives none (the rules engine);
            `information_gain` is this probability at or above the reviewer's threshold.
    """

    information_gain: bool
    verdict: str
    usage: Usage | None = None
    probability: float | None = None


@dataclass(frozen=True)
class Answer:
    r"""
    An expert's answer to one instruction.

    Parameters:
        text (`str`):
            The answer (empty when the query failed).
        usage ([`Usage`] or `None`):
            What the query cost (`None` for the rules engine).
    """

    text: str
    usage: Usage | None = None


class Rewriter(ABC):
    """Applies operations to instructions."""

    model_name: str = "unknown"

    def check_operations(self, operations: Iterable[Operation] | Mapping[str, Operation]) -> None:  # noqa: B027
        """
        Raises a `ValueError` naming an operation this rewriter cannot apply. The environment calls it before any
        query. An LLM rewriter applies any operation through its prompt; the rules engine overrides it.
        """

    @abstractmethod
    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]: ...


class Reviewer(ABC):
    """Judges whether each rewritten instruction adds information over its original."""

    model_name: str = "unknown"

    @abstractmethod
    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]: ...


class Expert(ABC):
    """Answers instructions."""

    model_name: str = "unknown"

    @abstractmethod
    def respond(self, instructions: list[str]) -> list[Answer]: ...

    def respond_attempts(self, instructions: list[str], attempts: list[int]) -> list[Answer]:
        """
        Answers `instructions`, `attempts[i]` (0 for the first) saying how many times instruction `i` was asked
        before, so that an expert that samples asks with a seed that depends on the attempt alone, not on the order
        in which concurrent callers reached it. This default answers as `respond` does (a deterministic expert).
        """
        return self.respond(instructions)
