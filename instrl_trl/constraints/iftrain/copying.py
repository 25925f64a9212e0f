"""
IFTrain's copy checkers: the response repeats the request (whole, several times, or a span of it) instead of
answering, or repeats a phrase with one word changed.

Each reproduces the verdict of its class in allenai/open-instruct `open_instruct/IFEvalG/instructions.py` (commit
ebca9f7d4, where `RepeatPhraseChecker` was last fixed). The request to copy is an argument (`prompt_to_repeat`),
as in IFTrain's data; comparisons ignore case and surrounding whitespace.
"""

import re
from typing import ClassVar

from .base import IFTrainChecker


def _same_text(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


class CopyRequest(IFTrainChecker):
    """`copy:copy` and `copy:copying_simple`: the response is `prompt_to_repeat`, nothing before or after it."""

    params: ClassVar[dict[str, str]] = {"prompt_to_repeat": "text"}
    unstripped = ("prompt_to_repeat",)

    def check(self, response: str) -> bool:
        return _same_text(response, self.prompt_to_repeat)


class CopyRequestTimes(IFTrainChecker):
    """
    `copy:copying_multiple`: the response is `prompt_to_repeat` `N` times, separated by `******` (six asterisks; a
    longer run of asterisks leaves a stray `*` that fails the copy).
    """

    params: ClassVar[dict[str, str]] = {"prompt_to_repeat": "text", "N": "count"}
    positive = ("N",)
    unstripped = ("prompt_to_repeat",)

    def check(self, response: str) -> bool:
        copies = response.split("******")
        return len(copies) == self.N and all(_same_text(copy, self.prompt_to_repeat) for copy in copies)


class CopySpan(IFTrainChecker):
    """
    `new:copy_span_idx`: the response is `prompt_to_repeat[n_start:n_end]`, character indices, `n_end` excluded
    (the reference's text says "including" both; its check slices without the last). `n_start` must be at least 1:
    the reference draws a start of 0 at random, so a span from the first character cannot be asked for.
    """

    params: ClassVar[dict[str, str]] = {"prompt_to_repeat": "text", "n_start": "count", "n_end": "count"}
    positive = ("n_start", "n_end")
    unstripped = ("prompt_to_repeat",)

    def check(self, response: str) -> bool:
        return _same_text(response, self.prompt_to_repeat[self.n_start : self.n_end])


class RepeatPhrase(IFTrainChecker):
    """
    `copy:repeat_phrase`: `phrase` appears exactly `small_n` times, each time with exactly one of its words changed
    and the same number of words.

    How the reference finds the repetitions: every non-overlapping stretch of one line that runs from the phrase's
    first word and a space, lazily, to a space and its last word (a regular expression built from the two words,
    case-sensitive, matched inside other words too). Any stretch found counts, so writing the first and last words
    in that order elsewhere on a line adds a repetition; an unchanged copy fails.
    """

    params: ClassVar[dict[str, str]] = {"phrase": "text", "small_n": "count"}
    positive = ("small_n",)

    def validate(self, owner: str) -> None:
        words = self.phrase.split()
        try:
            self._pattern = re.compile(rf"{words[0]} .*? {words[-1]}")
        except re.error as error:
            raise ValueError(
                f"{owner}: the first and last words of kwarg `phrase` ({self.phrase!r}) make the reference's regular "
                f"expression, and they are not valid in one ({error})."
            ) from None

    def check(self, response: str) -> bool:
        reference = self.phrase.split()
        found = self._pattern.findall(response)
        if len(found) != self.small_n:
            return False
        for repetition in found:
            words = repetition.split()
            if len(words) != len(reference) or sum(a != b for a, b in zip(words, reference, strict=True)) != 1:
                return False
        return True
