"""
IFTrain's word checkers: keywords (how often, where, never), first and last words, palindromes, neighbouring words.

Each reproduces the verdict of its class in allenai/open-instruct `open_instruct/IFEvalG/instructions.py` (commit
ebca9f7d4), including the reference's choices of units, which the docstrings state: `str.split()` words or NLTK's
Treebank tokens (punctuation marks are tokens), keywords matched as case-blind regular expressions *inside* other
words, first words compared with their punctuation.
"""

import itertools
import re
from typing import ClassVar

from ..ifbench.base import treebank_words
from .base import IFTrainChecker, compare
from .sentences import split_into_sentences


def _occurrences(pattern: str, text: str) -> int:
    # The reference counts `re.findall(keyword, text, re.IGNORECASE)`: a regular expression, matched inside words.
    return len(re.findall(pattern, text, flags=re.IGNORECASE))


class WordOnce(IFTrainChecker):
    """`keywords:word_once`: `keyword` occurs exactly once (case-blind, also inside other words)."""

    params: ClassVar[dict[str, str]] = {"keyword": "text"}
    patterns = ("keyword",)

    def check(self, response: str) -> bool:
        return _occurrences(self.keyword, response) == 1


class WordCountDifferentNumbers(IFTrainChecker):
    """
    `keywords:word_count_different_numbers`: `keyword` occurs `relation` `frequency` times (case-blind, inside
    words too). A `frequency` of 0 is kept as given, as the reference keeps it (it redraws only a negative one).
    """

    params: ClassVar[dict[str, str]] = {"keyword": "text", "frequency": "count", "relation": "text"}
    relations = ("relation",)
    patterns = ("keyword",)

    def validate(self, owner: str) -> None:
        if self.frequency < 0:
            raise ValueError(f"{owner}: kwarg `frequency` must be at least 0, got {self.frequency} (redrawn).")

    def check(self, response: str) -> bool:
        return compare(_occurrences(self.keyword, response), self.relation, self.frequency)


class ExcludeWordHarder(IFTrainChecker):
    """
    `keywords:exclude_word_harder`: the text never holds `keyword` with a space on each side. Only that: the word at
    the very start or end of the response, or next to punctuation or a line break, is not caught (the reference's
    test is `" " + keyword + " " not in response`).
    """

    params: ClassVar[dict[str, str]] = {"keyword": "text"}

    def check(self, response: str) -> bool:
        return f" {self.keyword} " not in response


class CountIncrementWord(IFTrainChecker):
    """`count:count_increment_word`: `keyword1` occurs exactly once and `keyword2` exactly twice (as `word_once`)."""

    params: ClassVar[dict[str, str]] = {"keyword1": "text", "keyword2": "text"}
    patterns = ("keyword1", "keyword2")

    def check(self, response: str) -> bool:
        return _occurrences(self.keyword1, response) == 1 and _occurrences(self.keyword2, response) == 2


class KeywordSpecificPosition(IFTrainChecker):
    """
    `keywords:keyword_specific_position`: Treebank token `m` of sentence `n` (both from 1) is `keyword`, with the
    same case. Sentences come from IFEval's splitter; tokens count punctuation marks ("Yes, it" is three).
    """

    params: ClassVar[dict[str, str]] = {"keyword": "text", "n": "count", "m": "count"}
    positive = ("n", "m")

    def check(self, response: str) -> bool:
        sentences = split_into_sentences(response)
        if len(sentences) < self.n:
            return False
        words = treebank_words(sentences[self.n - 1])
        return len(words) >= self.m and words[self.m - 1] == self.keyword


class FirstWordOfSentences(IFTrainChecker):
    """
    `first_word:first_word_sent`: every sentence (IFEval's splitter) starts with `first_word`, any case. The first
    whitespace word is compared as it is, so "Indeed," does not match "indeed".
    """

    params: ClassVar[dict[str, str]] = {"first_word": "text"}

    def check(self, response: str) -> bool:
        for sentence in split_into_sentences(response):
            if not sentence.strip() or sentence.split()[0].lower() != self.first_word.lower():
                return False
        return True


class FirstWordOfAnswer(IFTrainChecker):
    """`first_word:first_word_answer`: the first whitespace word of the response is `first_word` (any case, as is)."""

    params: ClassVar[dict[str, str]] = {"first_word": "text"}

    def check(self, response: str) -> bool:
        words = response.split()
        return bool(words) and words[0].lower() == self.first_word.lower()


_NOT_WORD_OR_SPACE = re.compile(r"[^\w\s]")


def _bare(word: str) -> str:
    # The reference removes every character that is neither a word character nor a space: "end." -> "end".
    return _NOT_WORD_OR_SPACE.sub("", word).lower()


class LastWordOfSentences(IFTrainChecker):
    """
    `last_word:last_word_sent`: every sentence (IFEval's splitter) ends with `last_word`, any case, once its
    punctuation is removed.
    """

    params: ClassVar[dict[str, str]] = {"last_word": "text"}

    def check(self, response: str) -> bool:
        for sentence in split_into_sentences(response):
            if not sentence.strip() or _bare(sentence.split()[-1]) != self.last_word.lower():
                return False
        return True


class LastWordOfAnswer(IFTrainChecker):
    """`last_word:last_word_answer`: the last whitespace word, its punctuation removed, is `last_word` (any case)."""

    params: ClassVar[dict[str, str]] = {"last_word": "text"}

    def check(self, response: str) -> bool:
        words = response.split()
        return bool(words) and _bare(words[-1]) == self.last_word.lower()


class StartEnd(IFTrainChecker):
    """
    `keywords:start_end`: the first and last Treebank tokens are the same (any case); a closing period is a token,
    so the response must end on the word itself.
    """

    def check(self, response: str) -> bool:
        words = treebank_words(response)
        return len(words) >= 2 and words[0].lower() == words[-1].lower()


class Palindrome(IFTrainChecker):
    """
    `keywords:palindrome`: some whitespace word reads the same backwards, as it is: a one-letter word ("a", "I")
    counts, "Level" (capital L) and "level." (with its period) do not.
    """

    def check(self, response: str) -> bool:
        return any(word == word[::-1] for word in response.split())


class NoAdjacentConsecutive(IFTrainChecker):
    """
    `keywords:no_adjacent_consecutive`: no whitespace word starts with the character right after (in Unicode order)
    the first character of the word before it, lower-cased: "a b" fails, and so do "1 2" and "( )". A first
    character whose lower case is two characters long ("İ") fails the response, as in the reference.
    """

    def check(self, response: str) -> bool:
        words = response.split()
        for before, after in itertools.pairwise(words):
            first, second = before[0].lower(), after[0].lower()
            if len(first) != 1 or len(second) != 1 or ord(second) - ord(first) == 1:
                return False
        return True
