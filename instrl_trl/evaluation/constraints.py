"""
Verifiable-instruction checks for scoring responses: lm-eval's IFEval strict and loose verdicts, reproducibly.

The checker classes are lm-eval's own (`lm_eval.tasks.ifeval.instructions_registry.INSTRUCTION_DICT`); [`check_row`]
mirrors `lm_eval.tasks.ifeval.utils.test_instruction_following_strict` and `..._loose` (lm-eval 0.4.13), with three
differences, none of which changes a verdict lm-eval gives reproducibly:

- a row lm-eval would score at random, or crash on, raises [`InvalidReferenceError`] (unknown id, kwargs that
  `build_description` rejects, a missing or out-of-range argument that lm-eval silently draws with `random`);
- `keywords:letter_frequency` with a single character outside a-z (IFEval asks for '#' and '!') counts that
  character, where lm-eval replaces it by `random.choice(string.ascii_letters)`; langdetect is seeded
  (`DetectorFactory.seed = 0`);
- each checker is built once for both verdicts, the strict verdict is reused as the loose check of the unchanged
  response, and identical loose variants are checked once (so a language is detected once per distinct text).
"""

import functools
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..constraints import ensure_punkt_tab


LETTER_FREQUENCY_ID = "keywords:letter_frequency"


class InvalidReferenceError(ValueError):
    """A reference row that cannot be scored reproducibly: unknown instruction id, or kwargs that do not fit."""


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


@functools.cache
def _lm_eval_ifeval():
    # lm-eval's `instructions_util` tries `nltk.download("punkt_tab")` at import: put the offline copy in place first.
    ensure_punkt_tab()
    import langdetect
    from lm_eval.tasks.ifeval import instructions, instructions_registry

    langdetect.DetectorFactory.seed = 0  # unseeded, `language:response_language` varies run to run (lm-eval #4213)

    class LiteralLetterFrequencyChecker(instructions.LetterFrequencyChecker):
        # Adapted from lm-eval 0.4.13 `LetterFrequencyChecker.build_description`, which replaces a letter outside
        # a-z by `random.choice(string.ascii_letters)`: count the character as given instead.
        def build_description(self, *, letter=None, let_frequency=None, let_relation=None):
            description = super().build_description(letter="a", let_frequency=let_frequency, let_relation=let_relation)
            self._letter = letter.lower()
            return description

    return instructions_registry.INSTRUCTION_DICT, LiteralLetterFrequencyChecker


def instruction_ids() -> list[str]:
    """Returns the instruction ids that can be checked: those of lm-eval's IFEval registry."""
    return list(_lm_eval_ifeval()[0])


def _parameters(checker_class: type) -> set[str]:
    signature = inspect.signature(checker_class.build_description)
    return {
        name
        for name, parameter in signature.parameters.items()
        if name != "self" and parameter.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }


def _build_checker(instruction_id: str, kwargs: Mapping[str, Any] | None, prompt: str):
    registry, literal_letter_checker = _lm_eval_ifeval()
    if instruction_id not in registry:
        raise InvalidReferenceError(f"unknown instruction id {instruction_id!r}; valid ids: {', '.join(registry)}")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise InvalidReferenceError(f"{instruction_id!r}: kwargs must be a dict, got {kwargs!r}")
    checker_class = registry[instruction_id]
    # As lm-eval's `process_results`: every falsy value is dropped (`if v`), not only `None`.
    kwargs = {key: value for key, value in (kwargs or {}).items() if value}
    parameters = _parameters(checker_class)
    unknown = sorted(set(kwargs) - parameters)
    missing = sorted(parameters - set(kwargs))
    if unknown or missing:
        raise InvalidReferenceError(
            f"{instruction_id!r}: kwargs {kwargs} do not fit `build_description({', '.join(sorted(parameters))})`: "
            f"unknown {unknown}, missing {missing} (lm-eval fails on an unknown one and draws a missing one at random)"
        )
    letter = kwargs.get("letter") if instruction_id == LETTER_FREQUENCY_ID else None
    if letter is not None:
        if not isinstance(letter, str) or len(letter) != 1:
            raise InvalidReferenceError(f"{instruction_id!r}: `letter` must be one character, got {letter!r}")
        if not "a" <= letter.lower() <= "z":
            checker_class = literal_letter_checker
    checker = checker_class(instruction_id)
    try:
        checker.build_description(**{k: list(v) if isinstance(v, list) else v for k, v in kwargs.items()})
        args = checker.get_instruction_args()
        if args and "prompt" in args:  # as lm-eval; no class of lm-eval 0.4.13 has an argument named `prompt`
            checker.build_description(prompt=prompt)
    except Exception as error:
        raise InvalidReferenceError(f"{instruction_id!r}: lm-eval rejects kwargs {kwargs}: {error!r}") from error
    # Out of range numbers (a negative count, `nth_paragraph` past `num_paragraphs`) are replaced at random.
    for key, value in kwargs.items():
        if isinstance(value, int) and not isinstance(value, bool) and args.get(key) != value:
            raise InvalidReferenceError(
                f"{instruction_id!r}: `{key}={value}` is out of range; lm-eval would replace it by a random "
                f"{args.get(key)!r}"
            )
    return checker


def build_checkers(
    instruction_id_list: Sequence[str], kwargs_list: Sequence[Mapping[str, Any] | None], *, prompt: str = ""
) -> list:
    r"""
    Builds lm-eval's checker of every instruction of a row, as lm-eval's `process_results` does.

    Args:
        instruction_id_list (`Sequence[str]`):
            Ids in lm-eval's `INSTRUCTION_DICT`, for example `"detectable_format:title"`.
        kwargs_list (`Sequence[dict | None]`):
            The `build_description` arguments of each instruction (IFEval's `kwargs` column); falsy values are dropped.
        prompt (`str`, *optional*, defaults to `""`):
            The row's prompt, passed as lm-eval does to a checker whose arguments include `prompt`.

    Returns:
        `list`: one lm-eval `Instruction` per id.

    Raises:
        [`InvalidReferenceError`]: the row cannot be scored reproducibly; the message says which instruction and why.
    """
    if isinstance(instruction_id_list, str) or len(instruction_id_list) != len(kwargs_list):
        raise InvalidReferenceError(
            f"`instruction_id_list` ({instruction_id_list!r}) and `kwargs` ({len(kwargs_list)} entries) must be "
            "lists of the same length"
        )
    return [_build_checker(iid, kwargs, prompt) for iid, kwargs in zip(instruction_id_list, kwargs_list, strict=True)]


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


def _follows(checker, text: str) -> bool:
    # lm-eval counts an empty (or blank) text as not following, without calling the checker.
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
        [`InvalidReferenceError`]: the row cannot be scored reproducibly (see [`build_checkers`]).

    Example:

    ```python
    >>> from instrl_trl.evaluation import check_row
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
            followed = _follows(checker, response)
            strict.append(followed)
            if not followed:
                if variants is None:  # the unchanged response is lm-eval's first variant: its verdict is `followed`
                    variants = [v for v in dict.fromkeys(loose_variants(response)[1:]) if v != response]
                followed = any(_follows(checker, variant) for variant in variants)
        except Exception as error:  # lm-eval would crash: e.g. a keyword that is not a valid regular expression
            raise InvalidReferenceError(f"{instruction_id!r}: lm-eval's check fails: {error!r}") from error
        loose.append(followed)
    return RowVerdict(strict=strict, loose=loose)
