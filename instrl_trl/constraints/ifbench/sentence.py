"""IFBench's `sentence:*` checkers: constraints that compare one Punkt sentence with the next, or pick one out."""

import re
from itertools import pairwise
from typing import ClassVar

from .base import PUNCTUATION_AND_SPACE, Checker, sentences, strip_punctuation


def _alliteration_score(sentence: str) -> int:
    """
    IFBench's alliteration measure: each run of k >= 2 neighbouring words with one first letter scores k.

    Words are lower-cased whitespace words with leading punctuation removed (empty ones dropped).
    """
    words = [word for word in (token.lstrip(PUNCTUATION_AND_SPACE) for token in sentence.lower().split()) if word]
    score = 0
    in_run = False
    for current, following in pairwise(words):
        if current[0] == following[0]:
            score += 1 if in_run else 2
            in_run = True
        else:
            in_run = False
    return score


class AlliterationIncrement(Checker):
    """`sentence:alliteration_increment`: each sentence scores strictly more alliteration than the one before."""

    def check(self, response: str) -> bool:
        scores = [_alliteration_score(sentence) for sentence in sentences(response)]
        return all(a < b for a, b in pairwise(scores))


class KeywordInSentence(Checker):
    """`sentence:keyword`: `word` occurs as a whole word, in any case, in Punkt sentence number `N` (1-based)."""

    params: ClassVar[dict[str, str]] = {"word": "text", "N": "count"}

    def check(self, response: str) -> bool:
        found = sentences(response)
        if not 1 <= self.N <= len(found):
            return False
        return re.search(rf"\b{re.escape(self.word)}\b", found[self.N - 1], re.IGNORECASE) is not None


def _word_count(sentence: str) -> int:
    return len(strip_punctuation(sentence).split())


class WordCountIncrement(Checker):
    """`sentence:increment`: each sentence has exactly `small_n` more words (punctuation deleted) than the last."""

    params: ClassVar[dict[str, str]] = {"small_n": "count"}

    def check(self, response: str) -> bool:
        counts = [_word_count(sentence) for sentence in sentences(response)]
        if not counts:
            return False
        return all(b == a + self.small_n for a, b in pairwise(counts))
