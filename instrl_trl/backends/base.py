"""
The contract between the environment and whatever generates text for the three roles.

A *rewriter* applies an operation to an instruction, a *reviewer* judges whether the result adds information, an
*expert* answers instructions. Each role is batch in, batch out. The offline rules engine (`rules.py`) and the LLM
backends implement the same three classes, and every call is counted by the environment as one query per item.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ..constraints import Constraint
from ..operations.operation import Operation


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
    """

    instruction: str
    constraints: tuple[Constraint, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Review:
    r"""
    A reviewer's verdict on one rewrite.

    Parameters:
        information_gain (`bool`):
            `True` when the new instruction adds information over the old one ("Not Equal" in the paper).
        verdict (`str`):
            The raw verdict text, kept for logs.
    """

    information_gain: bool
    verdict: str


class Rewriter(ABC):
    """Applies operations to instructions."""

    model_name: str = "unknown"

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
    def respond(self, instructions: list[str]) -> list[str]: ...
