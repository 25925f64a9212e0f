"""
IFTrain's layout and counting checkers: paragraphs, sentence joins, word wrapping, forbidden marks, letter and word
counts.

Each reproduces the verdict of its class in allenai/open-instruct `open_instruct/IFEvalG/instructions.py` (commit
ebca9f7d4); where the reference's instruction text and its check disagree, the check is followed and the docstring
says how (for example `count:counting_composition` asks for "* * *" and splits on "***").
"""

import re
import string
from typing import ClassVar

from ..ifbench.base import treebank_words
from .base import IFTrainChecker, compare
from .sentences import split_into_sentences


_MARKDOWN_DIVIDER = re.compile(r"\s?\*\*\*\s?")


def _paragraphs(parts: list[str]) -> int | None:
    """
    The reference's paragraph count of a split response: empty first and last parts are dropped, an empty part in
    between makes the layout invalid (`None`).
    """
    count = len(parts)
    for index, part in enumerate(parts):
        if not part.strip():
            if index in (0, len(parts) - 1):
                count -= 1
            else:
                return None
    return count


class TwoParagraphsDivider(IFTrainChecker):
    """`paragraphs:paragraphs`: exactly two paragraphs separated by the markdown divider `***`."""

    def check(self, response: str) -> bool:
        return _paragraphs(_MARKDOWN_DIVIDER.split(response)) == 2


class TwoParagraphsBlankLine(IFTrainChecker):
    """`paragraphs:paragraphs2`: exactly two paragraphs separated by `\\n\\n` (and no other `\\n\\n`)."""

    def check(self, response: str) -> bool:
        return _paragraphs(response.split("\n\n")) == 2


class CountingComposition(IFTrainChecker):
    """
    `count:counting_composition`: three paragraphs separated by `***` (the reference's text says "* * *", its check
    splits on `***`), each of exactly `n_sent` sentences (IFEval's splitter) of exactly `n_words` Treebank tokens
    (the closing period is one of them).
    """

    params: ClassVar[dict[str, str]] = {"n_sent": "count", "n_words": "count"}
    positive = ("n_sent", "n_words")

    def check(self, response: str) -> bool:
        parts = _MARKDOWN_DIVIDER.split(response)
        if _paragraphs(parts) is None:
            return False
        # An empty first or last part is not a paragraph, but the reference still asks it for `n_sent` sentences.
        for part in parts:
            sentences = split_into_sentences(part)
            if len(sentences) != self.n_sent:
                return False
            if any(len(treebank_words(sentence)) != self.n_words for sentence in sentences):
                return False
        return len(parts) == 3


class SentenceHyphens(IFTrainChecker):
    """
    `detectable_format:sentence_hyphens`: the response is its sentences joined by `-` with no spaces. Cut at every
    `-`, each piece must equal, in order, a sentence of the response with its hyphens read as spaces (IFEval's
    splitter); a hyphen inside a word, a line break or a space around a `-` fails. Pieces beyond the last sentence
    are not compared, as in the reference.
    """

    def check(self, response: str) -> bool:
        sentences = split_into_sentences(response.replace("-", " "))
        pieces = response.split("-")
        # `strict=False`: the reference zips the two lists and compares only as many as the shorter one holds
        pairs = zip(pieces, sentences, strict=False)
        return all(piece == piece.strip() and piece == sentence for piece, sentence in pairs)


class SquareBrackets(IFTrainChecker):
    """`detectable_format:square_brackets`: every whitespace word starts with `[` and ends with `]`."""

    def check(self, response: str) -> bool:
        return all(word.startswith("[") and word.endswith("]") for word in response.split())


class BigramWrapping(IFTrainChecker):
    """
    `detectable_format:bigram_wrapping`: whitespace words taken in pairs from the start, the first of each pair
    starts with `<<` and the second ends with `>>`; an odd last word is free.
    """

    def check(self, response: str) -> bool:
        words = response.split()
        return all(words[i].startswith("<<") and words[i + 1].endswith(">>") for i in range(0, len(words) - 1, 2))


class NoDots(IFTrainChecker):
    """`punctuation:punctuation_dot`: no `.` anywhere (numbers, ellipses and web addresses included)."""

    def check(self, response: str) -> bool:
        return "." not in response


class NoExclamationMarks(IFTrainChecker):
    """`punctuation:punctuation_exclamation`: no `!` anywhere."""

    def check(self, response: str) -> bool:
        return "!" not in response


class UniqueWords(IFTrainChecker):
    """
    `count:count_unique`: no Treebank token occurs twice, case-sensitively: punctuation marks are tokens, so two
    periods fail, while "The" and "the" are two different words.
    """

    def check(self, response: str) -> bool:
        words = treebank_words(response)
        return len(words) == len(set(words))


_LOWERCASE_WORD = re.compile(r"\b[a-z]+\b")


class LowercaseCounting(IFTrainChecker):
    """
    `count:lowercase_counting`: at most `N` lower-case words in all (the reference's text says "each lowercase word
    at most N times"; its check counts every run of a-z between word boundaries, the "t" of "don't" included).
    """

    params: ClassVar[dict[str, str]] = {"N": "count"}
    positive = ("N",)

    def check(self, response: str) -> bool:
        return len(_LOWERCASE_WORD.findall(response)) <= self.N


_ASCII_LETTER = re.compile(r"[a-zA-Z]")


class LetterCounting(IFTrainChecker):
    """`letters:letter_counting`: the response has `relation` `N` ASCII letters (a-z, A-Z) in all."""

    params: ClassVar[dict[str, str]] = {"N": "count", "relation": "text"}
    positive = ("N",)
    relations = ("relation",)

    def check(self, response: str) -> bool:
        return compare(len(_ASCII_LETTER.findall(response)), self.relation, self.N)


class LetterFrequency(IFTrainChecker):
    """
    `letters:letter_counting2`: the letter `letter` (a-z, any case) occurs `let_relation` `let_frequency` times in the
    lower-cased response. This is IFEval's `keywords:letter_frequency` check under IFTrain's id; a letter outside
    a-z, which the reference replaces by a random one, is refused.
    """

    params: ClassVar[dict[str, str]] = {"letter": "text", "let_frequency": "count", "let_relation": "text"}
    relations = ("let_relation",)
    unstripped = ("letter",)  # " a" is not one letter: the reference redraws it

    def validate(self, owner: str) -> None:
        if len(self.letter) != 1 or self.letter.lower() not in string.ascii_lowercase:
            raise ValueError(
                f"{owner}: kwarg `letter` must be one letter a-z, got {self.letter!r} (the reference draws another "
                "letter at random)."
            )
        if self.let_frequency < 0:
            raise ValueError(f"{owner}: kwarg `let_frequency` must be at least 0, got {self.let_frequency} (redrawn).")
        self.letter = self.letter.lower()

    def check(self, response: str) -> bool:
        return compare(response.lower().count(self.letter), self.let_relation, self.let_frequency)
