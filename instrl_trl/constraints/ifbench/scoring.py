"""
Row-level IFBench scoring: strict and loose verdicts of one response, as IFBench's `evaluation_lib` gives them.

Mirrors `test_instruction_following_strict` and `..._loose` of allenai/IFBench (commit db69a6f): a blank response
follows nothing; the loose verdict also tries IFBench's seven variants of the response (first line, last line or
both removed; asterisks removed). Differences, none of which changes a verdict IFBench gives:

- null kwargs are dropped for both passes (IFBench's loose pass relies on its strict pass having dropped them);
- a missing argument is an error instead of a random draw, and a checker whose data is not available offline
  (`words:start_verb`) skips the row with the reason instead of downloading;
- where IFBench's checker crashes on a response (an empty CSV field, a NUL byte in CSV, `N=0`), ours says the
  instruction is not followed.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import Checker, CheckerUnavailable
from .registry import build_checker


class InvalidIFBenchRowError(ValueError):
    """A row that cannot be scored: unknown instruction id, mismatched lists, or kwargs that do not fit."""


@dataclass(frozen=True)
class RowVerdict:
    r"""
    Verdicts of one response on the instructions of its IFBench row, in the row's order.

    Parameters:
        strict (`list[bool]`):
            IFBench's strict verdicts: the response as it is follows the instruction. Empty when skipped.
        loose (`list[bool]`):
            IFBench's loose verdicts: the response or one of its [`loose_variants`] follows it. Empty when skipped.
        skipped (`str` or `None`, *optional*, defaults to `None`):
            Why the row was not scored (a checker's data is not available offline), or `None` when it was.
    """

    strict: list[bool] = field(default_factory=list)
    loose: list[bool] = field(default_factory=list)
    skipped: str | None = None

    @property
    def prompt_level_strict(self) -> bool:
        """Whether the response follows every instruction (strict)."""
        return self.skipped is None and all(self.strict)

    @property
    def prompt_level_loose(self) -> bool:
        """Whether the response follows every instruction (loose)."""
        return self.skipped is None and all(self.loose)


def loose_variants(response: str) -> list[str]:
    """IFBench's eight loose variants of `response`, in its order (the response itself first)."""
    lines = response.split("\n")
    without_first = "\n".join(lines[1:]).strip()
    without_last = "\n".join(lines[:-1]).strip()
    without_both = "\n".join(lines[1:-1]).strip()
    trimmed = [without_first, without_last, without_both]
    return [response, response.replace("*", ""), *trimmed, *(text.replace("*", "") for text in trimmed)]


def build_checkers(
    instruction_id_list: Sequence[str], kwargs_list: Sequence[Mapping[str, Any] | None]
) -> list[Checker]:
    r"""
    Builds the checker of every instruction of a row.

    Args:
        instruction_id_list (`Sequence[str]`):
            IFBench instruction ids (the `instruction_id_list` column).
        kwargs_list (`Sequence[dict | None]`):
            The arguments of each instruction (the `kwargs` column); null entries are dropped.

    Returns:
        `list[Checker]`: one checker per id.

    Raises:
        [`InvalidIFBenchRowError`]: the row cannot be scored; the message names the instruction and the field.
        [`CheckerUnavailable`]: a checker's data cannot be had offline.
    """
    if isinstance(instruction_id_list, str) or len(instruction_id_list) != len(kwargs_list):
        raise InvalidIFBenchRowError(
            f"`instruction_id_list` ({instruction_id_list!r}) and `kwargs` ({len(kwargs_list)} entries) must be lists "
            "of the same length."
        )
    try:
        return [build_checker(iid, kwargs) for iid, kwargs in zip(instruction_id_list, kwargs_list, strict=True)]
    except CheckerUnavailable:
        raise
    except (ValueError, TypeError) as error:
        raise InvalidIFBenchRowError(str(error)) from error


def _follows(checker: Checker, text: str) -> bool:
    # As IFBench: a blank text follows nothing, and the checker is not asked.
    return bool(text.strip()) and checker.check(text)


def check_row(
    response: str,
    instruction_id_list: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any] | None],
    *,
    prompt: str = "",
) -> RowVerdict:
    r"""
    Checks a response against the instructions of an IFBench row, strictly and loosely, as IFBench does.

    Args:
        response (`str`):
            The model's response.
        instruction_id_list (`Sequence[str]`):
            IFBench instruction ids (the `instruction_id_list` column).
        kwargs_list (`Sequence[dict | None]`):
            The arguments of each instruction (the `kwargs` column); null entries are dropped.
        prompt (`str`, *optional*, defaults to `""`):
            The row's prompt; no IFBench checker reads it (the repeat checkers get their text from kwargs), it is
            accepted so that the call matches the IFEval one.

    Returns:
        [`RowVerdict`]: the strict and loose verdicts, or `skipped` with the reason.

    Raises:
        [`InvalidIFBenchRowError`]: the row cannot be scored (see [`build_checkers`]).

    Example:

    ```python
    >>> from instrl_trl.constraints.ifbench import check_row
    >>> check_row("Here it is:\nNoSpacesHere", ["format:no_whitespace"], [{"N": None}])
    RowVerdict(strict=[False], loose=[True], skipped=None)
    ```
    """
    del prompt
    try:
        checkers = build_checkers(instruction_id_list, kwargs_list)
    except CheckerUnavailable as error:
        return RowVerdict(skipped=str(error))
    strict, loose = [], []
    variants = None
    for checker in checkers:
        followed = _follows(checker, response)
        strict.append(followed)
        if not followed:
            if variants is None:  # the response itself is the first variant; its verdict is `followed`
                variants = [text for text in dict.fromkeys(loose_variants(response)[1:]) if text != response]
            followed = any(_follows(checker, text) for text in variants)
        loose.append(followed)
    return RowVerdict(strict=strict, loose=loose)
