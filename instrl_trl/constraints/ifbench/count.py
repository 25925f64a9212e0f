"""IFBench's `count:*` checkers: how many words, names, numbers, pronouns or keywords a response holds."""

import re
from typing import ClassVar

from .base import PUNCTUATION_AND_SPACE, Checker, count_word_runs, strip_punctuation, treebank_words


class WordCountRange(Checker):
    """`count:word_count_range`: between `min_words` and `max_words` words (runs of `\\w`), both inclusive."""

    params: ClassVar[dict[str, str]] = {"min_words": "count", "max_words": "count"}

    def check(self, response: str) -> bool:
        return self.min_words <= count_word_runs(response) <= self.max_words


class UniqueWordCount(Checker):
    """`count:unique_word_count`: at least `N` distinct lower-cased whitespace words, edge punctuation removed."""

    params: ClassVar[dict[str, str]] = {"N": "count"}

    def check(self, response: str) -> bool:
        distinct = {token.strip(PUNCTUATION_AND_SPACE) for token in response.lower().split()}
        return len(distinct) >= self.N


COORDINATING_CONJUNCTIONS = frozenset({"and", "but", "for", "nor", "or", "so", "yet"})


class Conjunctions(Checker):
    """
    `count:conjunctions`: at least `small_n` different coordinating conjunctions.

    IFBench recognises a conjunction after stripping edge punctuation and case, but counts distinct *raw* tokens, so
    "and" and "And," are two; kept, since agreement with IFBench is the point.
    """

    params: ClassVar[dict[str, str]] = {"small_n": "count"}

    def check(self, response: str) -> bool:
        found = {
            token
            for token in response.split()
            if token.strip(PUNCTUATION_AND_SPACE).lower() in COORDINATING_CONJUNCTIONS
        }
        return len(found) >= self.small_n


PERSON_NAMES = [
    "Emma",
    "Liam",
    "Sophia",
    "Jackson",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Isabella",
    "Mason",
    "Mia",
    "Ethan",
    "Charlotte",
    "Alexander",
    "Amelia",
    "Benjamin",
    "Harper",
    "Leo",
    "Zoe",
    "Daniel",
    "Chloe",
    "Samuel",
    "Lily",
    "Matthew",
    "Grace",
    "Owen",
    "Abigail",
    "Gabriel",
    "Ella",
    "Jacob",
    "Scarlett",
    "Nathan",
    "Victoria",
    "Elijah",
    "Layla",
    "Nicholas",
    "Audrey",
    "David",
    "Hannah",
    "Christopher",
    "Penelope",
    "Thomas",
    "Nora",
    "Andrew",
    "Aria",
    "Joseph",
    "Claire",
    "Ryan",
    "Stella",
    "Jonathan",
]
_NAME_PATTERNS = tuple(re.compile(rf"\b{re.escape(name)}\b") for name in PERSON_NAMES)


class PersonNames(Checker):
    """`count:person_names`: at least `N` names of the prompt's fixed list of 50, matched case-sensitively."""

    params: ClassVar[dict[str, str]] = {"N": "count"}

    def check(self, response: str) -> bool:
        return sum(1 for pattern in _NAME_PATTERNS if pattern.search(response)) >= self.N


_DIGIT_RUN = re.compile(r"\d+")


class Numbers(Checker):
    """`count:numbers`: exactly `N` digit runs once punctuation is deleted (so "3.14" and "1,000" are one each)."""

    params: ClassVar[dict[str, str]] = {"N": "count"}

    def check(self, response: str) -> bool:
        return len(_DIGIT_RUN.findall(strip_punctuation(response))) == self.N


_MARKS = frozenset(".,!?;:")


class PunctuationCover(Checker):
    """
    `count:punctuation`: an interrobang (`?!`, `!?` or `‽`) and each of `. , ! ? ; :` elsewhere.

    One `?!` (else one `!?`) is taken out before looking for the single marks, so it does not count as `!` and `?`.
    """

    def check(self, response: str) -> bool:
        if not ("!?" in response or "?!" in response or "‽" in response):
            return False
        rest = response.replace("?!", "", 1)
        if len(rest) == len(response):
            rest = response.replace("!?", "", 1)
        return _MARKS <= set(rest)


_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


class NthWordJapanese(Checker):
    """`count:words_japanese`: every `N`-th whitespace word holds kana or kanji (numbers and bare punctuation pass)."""

    params: ClassVar[dict[str, str]] = {"N": "count"}

    def check(self, response: str) -> bool:
        if self.N == 0:
            return False
        for position, token in enumerate(response.split(), start=1):
            word = token.strip(PUNCTUATION_AND_SPACE)
            if position % self.N == 0 and word and not word.isdigit() and not _JAPANESE.search(word):
                return False
        return True


PRONOUNS = frozenset(
    [
        "i",
        "me",
        "we",
        "us",
        "you",
        "he",
        "him",
        "she",
        "her",
        "it",
        "they",
        "them",
        "my",
        "mine",
        "our",
        "ours",
        "your",
        "yours",
        "his",
        "hers",
        "its",
        "their",
        "theirs",
        "myself",
        "ourselves",
        "yourself",
        "yourselves",
        "himself",
        "herself",
        "itself",
        "themselves",
        "this",
        "that",
        "these",
        "those",
        "who",
        "whom",
        "whose",
        "which",
        "what",
        "whoever",
        "whomever",
        "whatever",
        "whichever",
        "anybody",
        "anyone",
        "anything",
        "everybody",
        "everyone",
        "everything",
        "nobody",
        "nothing",
        "somebody",
        "someone",
        "something",
        "each",
        "either",
        "neither",
        "both",
        "all",
        "some",
        "any",
        "none",
    ]
)


class Pronouns(Checker):
    """`count:pronouns`: at least `N` pronoun tokens (Treebank words, lower-cased, "/" read as a space)."""

    params: ClassVar[dict[str, str]] = {"N": "count"}

    def check(self, response: str) -> bool:
        tokens = treebank_words(response.replace("/", " ").lower())
        return sum(1 for token in tokens if token in PRONOUNS) >= self.N


class KeywordsMultiple(Checker):
    """`count:keywords_multiple`: `keyword1`..`keyword5` occur 1, 2, 3, 5 and 7 times as case-blind substrings."""

    params: ClassVar[dict[str, str]] = {f"keyword{i}": "text" for i in range(1, 6)}
    _TIMES = (1, 2, 3, 5, 7)

    def check(self, response: str) -> bool:
        lowered = response.lower()
        for i, times in enumerate(self._TIMES, start=1):
            if lowered.count(getattr(self, f"keyword{i}").strip().lower()) != times:
                return False
        return True
