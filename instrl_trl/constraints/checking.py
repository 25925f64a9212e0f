"""
Verdicts of a response on verifiable instructions: lm-eval's IFEval strict and loose checks, reproducibly.

One code path serves the `verified` column of generated rows (through [`~instrl_trl.constraints.Constraint.check`])
and the benchmark metric ([`check_row`]). The checker classes are lm-eval's own; [`check_row`] mirrors
`lm_eval.tasks.ifeval.utils.test_instruction_following_strict` and `..._loose` (lm-eval 0.4.13), with three
differences, none of which changes a verdict lm-eval gives reproducibly:

- a row lm-eval would score at random, or crash on, raises [`InvalidReferenceError`]: an unknown id, kwargs that
  `build_description` rejects, or a missing or out-of-range argument that lm-eval redraws with the global `random`.
  "Redraws" is observed, never guessed: building the checker must leave the global generator's state unchanged (the
  state is restored either way, so checking never moves a caller's random stream);
- `keywords:letter_frequency` with a single character outside a-z (IFEval asks for '#' and '!') counts that
  character, where lm-eval replaces it by `random.choice(string.ascii_letters)`; langdetect is seeded;
- each checker is built once for both verdicts, the strict verdict is reused as the loose check of the unchanged
  response, and identical loose variants are checked once (so a language is detected once per distinct text).
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .registry import LETTER_FREQUENCY_ID, checker_parameters, ifeval_registry


class InvalidReferenceError(ValueError):
    """A row that cannot be checked reproducibly: unknown instruction id, or kwargs that do not fit."""


@dataclass(frozen=True)
class RowVerdict:
    r"""
    Verdicts of one response on the instructions of its row, in the row's order.

    Parameters:
        strict (`list[bool]`):
            lm-eval's strict verdicts: the response as it is follows the instruction.
        loose (`list[bool]`):
            lm-eval's loose verdicts: the response, or one of its [`loose_variants`], follows the instruction.
    """

    strict: list[bool]
    loose: list[bool]

    @property
    def prompt_level_strict(self) -> bool:
        """Whether the response follows every instruction (strict)."""
        return all(self.strict)

    @property
    def prompt_level_loose(self) -> bool:
        """Whether the response follows every instruction (loose)."""
        return all(self.loose)


def drop_empty_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """
    Returns `kwargs` without its empty values, by lm-eval's rule (`process_results` keeps `v` only `if v`): IFEval
    rows carry `None` for the arguments of the other ids, and a falsy argument is redrawn by lm-eval anyway.
    """
    return {key: value for key, value in (kwargs or {}).items() if value}


def build_checker(instruction_id: str, kwargs: Mapping[str, Any] | None, *, prompt: str = "") -> tuple[Any, str]:
    r"""
    Builds lm-eval's checker of one instruction, as lm-eval's `process_results` does, and refuses to guess.

    Args:
        instruction_id (`str`):
            Id in lm-eval's `INSTRUCTION_DICT`, for example `"detectable_format:title"`.
        kwargs (`dict` or `None`):
            The arguments of its `build_description`; empty values are dropped ([`drop_empty_kwargs`]).
        prompt (`str`, *optional*, defaults to `""`):
            The row's prompt, passed as lm-eval does to a checker whose arguments include `prompt`.

    Returns:
        `tuple`: lm-eval's `Instruction` and its description text.

    Raises:
        [`InvalidReferenceError`]: the instruction cannot be checked reproducibly; the message says why.
    """
    registry = ifeval_registry()
    if instruction_id not in registry.checkers:
        raise InvalidReferenceError(
            f"unknown instruction id {instruction_id!r}; valid ids: {', '.join(registry.checkers)}"
        )
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise InvalidReferenceError(f"{instruction_id!r}: kwargs must be a dict, got {kwargs!r}")
    checker_class = registry.checkers[instruction_id]
    kwargs = drop_empty_kwargs(kwargs)
    parameters = checker_parameters(checker_class)
    unknown = sorted(set(kwargs) - set(parameters))
    missing = [name for name in parameters if name not in kwargs]
    if unknown or missing:
        raise InvalidReferenceError(
            f"{instruction_id!r}: kwargs {kwargs} do not fit `build_description({', '.join(parameters)})`: "
            f"unknown {unknown}, missing {missing} (lm-eval fails on an unknown one and draws a missing one at random)"
        )
    letter = kwargs.get("letter") if instruction_id == LETTER_FREQUENCY_ID else None
    if letter is not None:
        if not isinstance(letter, str) or len(letter) != 1:
            raise InvalidReferenceError(f"{instruction_id!r}: `letter` must be one character, got {letter!r}")
        if not "a" <= letter.lower() <= "z":
            checker_class = registry.literal_letter_checker
    checker = checker_class(instruction_id)
    state = random.getstate()
    try:
        # lm-eval's checkers sort lists they are given in place: pass copies.
        description = checker.build_description(
            **{key: list(value) if isinstance(value, list | tuple) else value for key, value in kwargs.items()}
        )
        args = checker.get_instruction_args()
        if args and "prompt" in args:  # as lm-eval; no class of lm-eval 0.4.13 has an argument named `prompt`
            description = checker.build_description(prompt=prompt)
        redrawn = random.getstate() != state
    except Exception as error:
        raise InvalidReferenceError(f"{instruction_id!r}: lm-eval rejects kwargs {kwargs}: {error!r}") from error
    finally:
        random.setstate(state)
    if redrawn:
        # e.g. `nth_paragraph` past `num_paragraphs`, which lm-eval's own generator writes and then redraws
        raise InvalidReferenceError(
            f"{instruction_id!r}: lm-eval draws an argument of kwargs {kwargs} at random (one is out of range); "
            f"this draw gave {args}"
        )
    return checker, description


def build_checkers(
    instruction_id_list: Sequence[str], kwargs_list: Sequence[Mapping[str, Any] | None], *, prompt: str = ""
) -> list:
    r"""
    Builds lm-eval's checker of every instruction of a row (see [`build_checker`]).

    Args:
        instruction_id_list (`Sequence[str]`):
            Ids in lm-eval's `INSTRUCTION_DICT` (IFEval's `instruction_id_list` column).
        kwargs_list (`Sequence[dict | None]`):
            The `build_description` arguments of each instruction (IFEval's `kwargs` column).
        prompt (`str`, *optional*, defaults to `""`):
            The row's prompt (IFEval's `prompt` column).

    Returns:
        `list`: one lm-eval `Instruction` per id.

    Raises:
        [`InvalidReferenceError`]: the row cannot be checked reproducibly; the message says which instruction and why.
    """
    if isinstance(instruction_id_list, str) or len(instruction_id_list) != len(kwargs_list):
        raise InvalidReferenceError(
            f"`instruction_id_list` ({instruction_id_list!r}) and `kwargs` ({len(kwargs_list)} entries) must be "
            "lists of the same length"
        )
    return [
        build_checker(instruction_id, kwargs, prompt=prompt)[0]
        for instruction_id, kwargs in zip(instruction_id_list, kwargs_list, strict=True)
    ]


def loose_variants(response: str) -> list[str]:
    """Returns lm-eval's eight loose variants of `response` (first/last line removed, asterisks removed), in order."""
    lines = response.split("\n")
    remove_first = "\n".join(lines[1:]).strip()
    remove_last = "\n".join(lines[:-1]).strip()
    remove_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        remove_first,
        remove_last,
        remove_both,
        remove_first.replace("*", ""),
        remove_last.replace("*", ""),
        remove_both.replace("*", ""),
    ]


def follows(checker, text: str) -> bool:
    """lm-eval's strict verdict of one built checker on `text`: an empty (or blank) text follows nothing."""
    return bool(text.strip()) and bool(checker.check_following(text))


def check_row(
    response: str,
    instruction_id_list: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any] | None],
    *,
    prompt: str = "",
) -> RowVerdict:
    r"""
    Checks a response against the instructions of an IFEval-schema row, strictly and loosely, as lm-eval does.

    Args:
        response (`str`):
            The model's response.
        instruction_id_list (`Sequence[str]`):
            Ids in lm-eval's `INSTRUCTION_DICT` (IFEval's `instruction_id_list` column).
        kwargs_list (`Sequence[dict | None]`):
            The `build_description` arguments of each instruction (IFEval's `kwargs` column).
        prompt (`str`, *optional*, defaults to `""`):
            The row's prompt (IFEval's `prompt` column).

    Returns:
        [`RowVerdict`]: the strict and loose verdict of each instruction, equal to lm-eval's `process_results`.

    Raises:
        [`InvalidReferenceError`]: the row cannot be checked reproducibly (see [`build_checker`]).

    Example:

    ```python
    >>> from instrl_trl.constraints import check_row
    >>> response = "Sure! Here It Is:\nthe quick brown fox jumps over the lazy dog and runs into the forest."
    >>> verdict = check_row(response, ["change_case:english_lowercase"], [{}])
    >>> verdict.strict, verdict.loose
    ([False], [True])

    ```
    """
    checkers = build_checkers(instruction_id_list, kwargs_list, prompt=prompt)
    strict, loose = [], []
    variants = None
    for instruction_id, checker in zip(instruction_id_list, checkers, strict=True):
        try:
            followed = follows(checker, response)
            strict.append(followed)
            if not followed:
                if variants is None:  # the unchanged response is lm-eval's first variant: its verdict is `followed`
                    variants = [v for v in dict.fromkeys(loose_variants(response)[1:]) if v != response]
                followed = any(follows(checker, variant) for variant in variants)
        except Exception as error:  # lm-eval would crash: e.g. a keyword that is not a valid regular expression
            raise InvalidReferenceError(f"{instruction_id!r}: lm-eval's check fails: {error!r}") from error
        loose.append(followed)
    return RowVerdict(strict=strict, loose=loose)
