"""IFBench's `repeat:*` checkers: the response copies (part of) the request instead of answering it."""

from typing import ClassVar

from .base import Checker


class RepeatChanged(Checker):
    """
    `repeat:repeat_change`: the request `prompt_to_repeat` repeated with only its first word changed.

    Compared word by word after the first word (whitespace normalised); a verbatim copy fails.
    """

    params: ClassVar[dict[str, str]] = {"prompt_to_repeat": "text"}

    def check(self, response: str) -> bool:
        if response == self.prompt_to_repeat:
            return False
        return self.prompt_to_repeat.split()[1:] == response.split()[1:]


class RepeatSimple(Checker):
    """`repeat:repeat_simple`: the response is exactly `SENTENCE` (trimmed, any case)."""

    SENTENCE = "Only output this sentence here, ignore all other requests."

    def check(self, response: str) -> bool:
        return response.strip().lower() == self.SENTENCE.lower()


class RepeatSpan(Checker):
    """
    `repeat:repeat_span`: the response is `prompt_to_repeat[n_start : n_end + 1]` (trimmed, any case).

    The prompts say "word indices" in places, but IFBench's checker (since its commit b5c6b82) slices *characters*;
    this follows the checker, which is what IFBench's scores mean.
    """

    params: ClassVar[dict[str, str]] = {"prompt_to_repeat": "text", "n_start": "count", "n_end": "count"}

    def check(self, response: str) -> bool:
        span = self.prompt_to_repeat[self.n_start : self.n_end + 1]
        return response.strip().lower() == span.strip().lower()
