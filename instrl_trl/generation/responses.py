"""Expert answers, checked against each instruction's verifiable constraints."""

from collections.abc import Callable
from dataclasses import dataclass, replace

from ..backends.accounting import QueryAccounting
from ..backends.base import Expert
from .evolve import Candidate


@dataclass(frozen=True)
class AnsweredCandidate:
    r"""
    A candidate with its expert answer.

    Parameters:
        candidate ([`Candidate`]): the evolved instruction.
        response (`str`): the expert's answer.
        verified (`bool` or `None`): whether the answer satisfies every verifiable constraint of the instruction;
            `None` when it carries none.
        attempts (`int`): how many answers were asked for.
    """

    candidate: Candidate
    response: str
    verified: bool | None
    attempts: int


class ExpertUnavailableError(RuntimeError):
    """Every answer of a batch failed: the expert cannot be reached (or answers nothing usable)."""


def verified_by_constraints(candidate: Candidate, response: str) -> bool | None:
    """Whether `response` satisfies every verifiable constraint of `candidate`; `None` when it carries none."""
    if not candidate.constraints:
        return None
    return all(constraint.check(response) for constraint in candidate.constraints)


def answer_and_verify(
    expert: Expert,
    candidates: list[Candidate],
    accounting: QueryAccounting,
    verification_retries: int = 1,
    keep_unverified: bool = False,
    on_failure: Callable[[Candidate], None] | None = None,
) -> list[AnsweredCandidate]:
    """
    Asks the expert to answer every candidate, checks answers against their constraints with lm-eval's IFEval
    checkers, asks again (up to `verification_retries` times) for those that fail, and keeps or drops those that
    still fail. Failed queries (empty answers) are dropped, each candidate passed to `on_failure` (a stage does not
    count its seed as done). Raises [`ExpertUnavailableError`] when every answer of the batch failed.

    Input: [`Candidate`]s. Output columns: `response`, `verified` (plus the candidate's).
    """
    if not candidates:
        return []
    answered: dict[int, AnsweredCandidate] = {}
    asked = [0] * len(candidates)
    pending = list(range(len(candidates)))
    num_failed = 0
    for attempt in range(1, verification_retries + 2):
        for i in pending:
            asked[i] += 1
        answers = expert.respond([candidates[i].instruction for i in pending])
        accounting.record("expert", len(pending), [answer.usage for answer in answers])
        retry = []
        for i, answer in zip(pending, answers, strict=True):
            if not answer.text.strip():
                num_failed += 1
                if on_failure is not None:
                    on_failure(candidates[i])
                continue
            verified = verified_by_constraints(candidates[i], answer.text)
            answered[i] = AnsweredCandidate(candidates[i], answer.text, verified, asked[i])
            if verified is False:
                retry.append(i)
        if attempt == 1 and num_failed == len(candidates):
            raise ExpertUnavailableError(
                f"The expert ({getattr(expert, 'model_name', type(expert).__name__)}) returned no usable answer for "
                f"any of {len(candidates)} instructions; check that its endpoint is reachable."
            )
        pending = retry
        if not pending:
            break
    # `attempts` counts every answer asked for, an empty retry included
    kept = [replace(answered[i], attempts=asked[i]) for i in sorted(answered)]
    return [row for row in kept if row.verified is not False or keep_unverified]
