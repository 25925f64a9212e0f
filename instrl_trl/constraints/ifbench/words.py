"""IFBench's `words:*` checkers: constraints on the letters, lengths, sounds and positions of words."""

import functools
import string
from collections import Counter
from itertools import pairwise
from typing import ClassVar

from .base import (
    PUNCTUATION,
    PUNCTUATION_AND_SPACE,
    Checker,
    CheckerUnavailable,
    sentences,
    strip_punctuation,
    treebank_words,
)


_ALPHABET = string.ascii_lowercase


class AlphabetLoop(Checker):
    """`words:alphabet`: word k+1 starts with the letter after word k's (z wraps to a); the first must be a letter."""

    def check(self, response: str) -> bool:
        words = strip_punctuation(response).strip(PUNCTUATION_AND_SPACE).split()
        if not words:
            return False
        letter = words[0][0].lower()
        if letter not in _ALPHABET:
            return False
        for word in words[1:]:
            letter = _ALPHABET[(_ALPHABET.index(letter) + 1) % 26]
            if word.lower()[0] != letter:
                return False
        return True


class ThreeVowels(Checker):
    """`words:vowel`: a single line (after trimming) using at most three of the vowels a, e, i, o, u."""

    def check(self, response: str) -> bool:
        lines = response.strip().split("\n")
        return len(lines) == 1 and len(set(lines[0].lower()) & set("aeiou")) <= 3


_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxyz")


def _has_consonant_pair(word: str) -> bool:
    return any(a in _CONSONANTS and b in _CONSONANTS for a, b in pairwise(word))


class ConsonantClusters(Checker):
    """`words:consonants`: every whitespace word (punctuation included) has two consonant letters side by side."""

    def check(self, response: str) -> bool:
        return all(_has_consonant_pair(word) for word in response.lower().split())


class Palindromes(Checker):
    """`words:palindrome`: at least ten words (punctuation deleted, any case) that are palindromes of length >= 5."""

    def check(self, response: str) -> bool:
        words = strip_punctuation(response).lower().split()
        return sum(1 for word in words if len(word) >= 5 and word == word[::-1]) >= 10


_PRIMES = frozenset({2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97})


class PrimeLengths(Checker):
    """`words:prime_lengths`: every word has a prime length once punctuation is deleted (lengths above 97 fail)."""

    def check(self, response: str) -> bool:
        return all(len(word) in _PRIMES for word in strip_punctuation(response).split())


TAGGER_RESOURCE = "taggers/averaged_perceptron_tagger_eng"


@functools.cache
def _tagger_available() -> bool:
    import nltk

    try:
        nltk.data.find(TAGGER_RESOURCE)
    except LookupError:
        return False
    return True


class StartsWithVerb(Checker):
    """
    `words:start_verb`: NLTK's perceptron tagger tags the first Treebank word as a verb (`VB*`).

    The tagger's data is on no package index, so building this checker raises [`CheckerUnavailable`] unless NLTK
    already finds `taggers/averaged_perceptron_tagger_eng` locally; nothing is downloaded.
    """

    @classmethod
    def build(cls, instruction_id: str = "", **kwargs) -> Checker:
        if not _tagger_available():
            raise CheckerUnavailable(
                f"{instruction_id or 'words:start_verb'} needs NLTK's {TAGGER_RESOURCE}, which no package index ships "
                "and which is not installed here; install it into an NLTK data folder to score these rows."
            )
        return super().build(instruction_id, **kwargs)

    def check(self, response: str) -> bool:
        import nltk

        words = treebank_words(response)
        return bool(words) and "VB" in nltk.pos_tag(words)[0][1]


class LimitedRepeats(Checker):
    """`words:repeats`: no word (lower-cased, punctuation deleted) occurs more than `small_n` times."""

    params: ClassVar[dict[str, str]] = {"small_n": "count"}

    def check(self, response: str) -> bool:
        counts = Counter(strip_punctuation(response.lower()).split())
        return all(count <= self.small_n for count in counts.values())


@functools.cache
def _syllable_parity(word: str) -> int:
    import syllapy

    return syllapy.count(word) % 2


class AlternatingSyllables(Checker):
    """`words:odd_even_syllables`: neighbouring words alternate between odd and even syllable counts (syllapy)."""

    def check(self, response: str) -> bool:
        parities = [_syllable_parity(word) for word in strip_punctuation(response).lower().split()]
        return all(a != b for a, b in pairwise(parities))


class LastWordFirst(Checker):
    """`words:last_first`: each sentence's last word (case-blind, edge punctuation off) opens the next sentence."""

    def check(self, response: str) -> bool:
        found = sentences(response)
        for current, following in pairwise(found):
            last = current.rstrip(PUNCTUATION_AND_SPACE).split()
            first = following.lstrip(PUNCTUATION_AND_SPACE).split()
            if not last or not first or last[-1].lower() != first[0].lower():
                return False
        return True


class ParagraphLastFirst(Checker):
    """`words:paragraph_last_first`: every non-blank line starts and ends with the same word (case-blind)."""

    def check(self, response: str) -> bool:
        for line in response.split("\n"):
            words = line.strip().lower().strip(PUNCTUATION_AND_SPACE).split()
            if words and words[0] != words[-1]:
                return False
        return True


class NoConsecutiveFirstLetter(Checker):
    """`words:no_consecutive`: no two neighbouring words (punctuation deleted, any case) share a first letter."""

    def check(self, response: str) -> bool:
        words = strip_punctuation(response.lower()).split()
        return all(a[0] != b[0] for a, b in pairwise(words))


def _alphanumeric_tokens(text: str) -> list[str]:
    return [token for token in treebank_words(text) if any(ch.isalnum() for ch in token)]


class KeywordSpecificPosition(Checker):
    """`words:keywords_specific_position`: `keyword` is word `m` of sentence `n` (1-based, punctuation skipped)."""

    params: ClassVar[dict[str, str]] = {"keyword": "text", "n": "count", "m": "count"}

    def check(self, response: str) -> bool:
        found = sentences(response)
        if not 1 <= self.n <= len(found):
            return False
        words = _alphanumeric_tokens(found[self.n - 1])
        if not 1 <= self.m <= len(words):
            return False
        return words[self.m - 1].lower() == self.keyword.strip().lower()


class WordsPosition(Checker):
    """
    `words:words_position`: the second Treebank word and the second-to-last one are both `keyword` (case-blind).

    When the response ends in a punctuation token, IFBench counts from the word before it: the token third from the
    end stands for "second to last".
    """

    params: ClassVar[dict[str, str]] = {"keyword": "text"}

    def check(self, response: str) -> bool:
        words = treebank_words(response)
        keyword = self.keyword.strip().lower()
        if len(words) < 2:
            return False
        if words[-1] in PUNCTUATION:
            return len(words) >= 3 and words[1].lower() == words[-3].lower() == keyword
        return words[1].lower() == words[-2].lower() == keyword
