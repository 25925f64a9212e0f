"""
Arguments and clashes of the IFBench constraints that `add_constraints` may append ([`SAMPLED_INSTRUCTION_IDS`]).

Arguments are drawn from the caller's `random.Random`, in IFBench's own ranges (its `instructions.py`, commit
db69a6f) except where those make the text impossible or absurd to follow; each exception is said at its line.
IFBench ships no conflict table for its ids, so [`CONFLICTS`] is written here: pairs whose texts contradict each
other, or whose checkers cannot both pass for some of the arguments drawn here.
"""

import random
from collections.abc import Sequence
from typing import Any

from .texts import SAMPLED_INSTRUCTION_IDS


BULLET_MARKERS = ("...", "SEPARATOR", "!?!?", "-")  # IFBench's choices for `format:list`
_KEYWORD_MIN_LENGTH = 5

CONFLICTS = (
    # a range of 100-550 words cannot hold every number of unique words drawn (100-500)
    ("count:word_count_range", "count:unique_word_count"),
    # 2:1 declaratives to questions against 1:1:1
    ("ratio:sentence_type", "ratio:sentence_balance"),
    # a keyword seven times against at most 1-5 repeats; a word ending one sentence opens the next
    ("words:repeats", "count:keywords_multiple"),
    ("words:repeats", "words:last_first"),
    # "... river. River ..." puts two words with one first letter side by side
    ("words:no_consecutive", "words:last_first"),
    # the emoji, not a word, ends each sentence and the response
    ("format:emoji", "words:last_first"),
    ("format:emoji", "words:words_position"),
    # three list layouts that exclude one another
    ("format:sub-bullets", "format:no_bullets_bullets"),
    ("format:sub-bullets", "format:list"),
    ("format:list", "format:no_bullets_bullets"),
    # the template fixes the first words and the lines after the bullets
    ("format:output_template", "words:words_position"),
    ("format:output_template", "format:no_bullets_bullets"),
    # the prose of `no_bullets_bullets` ends in periods
    ("ratio:sentence_type", "format:no_bullets_bullets"),
    ("ratio:sentence_balance", "format:no_bullets_bullets"),
    # NLTK splits "<i>" into "<", "i", ">": a lower-case one-letter word
    ("format:title_case", "format:thesis"),
    # two keywords may be asked for at one position
    ("words:keywords_specific_position", "words:words_position"),
)


def distinct_keywords(word_pool: Sequence[str], rng: random.Random, k: int) -> list[str]:
    """
    `k` distinct words of at least five letters, none inside another: `count:keywords_multiple` (and IFTrain's keyword
    checkers) count case-blind substrings, so "art" and "start" together could never have their counts.
    """
    long_words = [word for word in word_pool if len(word) >= _KEYWORD_MIN_LENGTH]
    while True:
        words = rng.sample(long_words, k)
        if not any(a != b and a in b for a in words for b in words):
            return words


def sample_kwargs(instruction_id: str, rng: random.Random, word_pool: Sequence[str]) -> dict[str, Any]:
    r"""
    Draws the arguments of one IFBench constraint of [`SAMPLED_INSTRUCTION_IDS`].

    Args:
        instruction_id (`str`):
            The IFBench id.
        rng (`random.Random`):
            Source of every random choice.
        word_pool (`Sequence[str]`):
            Words the keywords are drawn from, in a fixed order (the caller leaves out those already in use).

    Returns:
        `dict[str, Any]`: every argument of the id's checker (empty for ids without arguments).
    """
    if instruction_id not in SAMPLED_INSTRUCTION_IDS:
        raise ValueError(f"{instruction_id!r} is not sampled; sampled ids: {', '.join(SAMPLED_INSTRUCTION_IDS)}.")
    if instruction_id == "count:word_count_range":
        low = rng.randint(100, 500)
        return {"min_words": low, "max_words": low + rng.randint(int(low * 0.05), int(low * 0.1))}
    if instruction_id == "count:unique_word_count":
        return {"N": rng.randint(100, 500)}
    if instruction_id == "ratio:stop_words":
        # IFBench draws 1-100 %; English prose below about 30 % stop words is barely writable, above 60 % no limit
        return {"percentage": rng.randrange(30, 61, 5)}
    if instruction_id == "count:conjunctions":
        return {"small_n": rng.randint(2, 6)}
    if instruction_id == "count:person_names":
        return {"N": rng.randint(1, 6)}  # IFBench: up to 50 names, a list of names rather than an answer
    if instruction_id == "count:numbers":
        return {"N": rng.randint(1, 6)}
    if instruction_id == "count:pronouns":
        return {"N": rng.randint(1, 25)}
    if instruction_id == "count:keywords_multiple":
        return {f"keyword{i}": word for i, word in enumerate(distinct_keywords(word_pool, rng, 5), start=1)}
    if instruction_id == "words:repeats":
        return {"small_n": rng.randint(1, 5)}
    if instruction_id == "words:keywords_specific_position":
        # IFBench: sentence 20-30, word 30-40, which asks for an essay of 30-word sentences; here an early position
        return {"keyword": distinct_keywords(word_pool, rng, 1)[0], "n": rng.randint(1, 5), "m": rng.randint(1, 10)}
    if instruction_id == "words:words_position":
        return {"keyword": distinct_keywords(word_pool, rng, 1)[0]}
    if instruction_id == "sentence:keyword":
        return {"word": distinct_keywords(word_pool, rng, 1)[0], "N": rng.randint(1, 5)}  # IFBench: sentence 1-20
    if instruction_id == "sentence:increment":
        return {"small_n": rng.randint(1, 5)}
    if instruction_id == "format:list":
        return {"sep": rng.choice(BULLET_MARKERS)}
    return {}
