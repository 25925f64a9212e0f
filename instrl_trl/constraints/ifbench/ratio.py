"""IFBench's `ratio:*` checkers: proportions of stopwords, sentence types, sentence lengths and shared trigrams."""

from typing import ClassVar

from .base import Checker, count_word_runs, english_stopwords, sentences, word_runs


class StopWords(Checker):
    """`ratio:stop_words`: stopwords (NLTK's English list) are at most `percentage` per cent of the `\\w+` words."""

    params: ClassVar[dict[str, str]] = {"percentage": "number"}

    def check(self, response: str) -> bool:
        total = count_word_runs(response)
        if total == 0:
            return False
        stopwords = english_stopwords()
        hits = sum(1 for word in word_runs(response) if word.lower() in stopwords)
        return (hits / total) * 100 <= self.percentage


def _endings(response: str) -> tuple[int, int, int]:
    """Sentences ending in ".", "?" and "!" (the last character only, so a closing quote hides the mark)."""
    found = sentences(response)
    return tuple(sum(1 for sentence in found if sentence.endswith(mark)) for mark in ".?!")


class SentenceType(Checker):
    """`ratio:sentence_type`: twice as many sentences end in "." as in "?" (zero and zero counts as 2:1)."""

    def check(self, response: str) -> bool:
        declarative, interrogative, _ = _endings(response)
        return declarative == 2 * interrogative


class SentenceBalance(Checker):
    """`ratio:sentence_balance`: as many sentences end in "." as in "?" and in "!"."""

    def check(self, response: str) -> bool:
        declarative, interrogative, exclamatory = _endings(response)
        return declarative == interrogative == exclamatory


def _char_trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


class TrigramOverlap(Checker):
    """
    `ratio:overlap`: the share of the response's distinct trigrams found in `reference_text` is `percentage` +-2.

    IFBench feeds the raw strings to `nltk.ngrams`, so its trigrams are of *characters*, not words; so are these.
    """

    params: ClassVar[dict[str, str]] = {"reference_text": "text", "percentage": "number"}

    def check(self, response: str) -> bool:
        ours = _char_trigrams(response)
        if not ours:
            return False
        share = len(ours & _char_trigrams(self.reference_text)) / len(ours)
        return self.percentage - 2 <= share * 100 <= self.percentage + 2


class SentenceWords(Checker):
    """
    `ratio:sentence_words`: exactly three sentences of equal length in characters.

    The prompt also asks for all-different words; IFBench does not check that, and neither does this.
    """

    def check(self, response: str) -> bool:
        found = sentences(response)
        return len(found) == 3 and len({len(sentence.strip()) for sentence in found}) == 1
