"""
Arguments and clashes of the IFTrain constraints that `add_constraints` may append ([`SAMPLED_INSTRUCTION_IDS`]).

Arguments are drawn from the caller's `random.Random`, in the reference's ranges (open-instruct `IFEvalG`, commit
ebca9f7d4) except where those make the text absurd; each exception is said at its line. The reference's conflict
table covers only a few IFTrain pairs (`paragraphs`/`paragraphs2`, `first_word_sent`/`first_word_answer`,
`counting_composition` with the paragraph ids), so [`CONFLICTS`] and [`IFEVAL_CONFLICTS`] are written here from
reading the checkers: two constraints clash when no response passes both checkers for some of the arguments drawn
here, or when their texts contradict each other.
"""

import random
from collections.abc import Sequence
from typing import Any

from ..ifbench.sampling import distinct_keywords
from .base import RELATIONS
from .texts import SAMPLED_INSTRUCTION_IDS


# our own phrases: distinct first and last words with no regular-expression character (the checker builds a pattern
# from them), inner words to change
PHRASES = (
    "Rivers carry cold water to the sea",
    "Every cloud has a silver lining",
    "Slow and steady wins the race",
    "Good things come to those who wait",
    "A small boat drifts past the old bridge",
    "Morning light falls softly on quiet fields",
)

# whole-response layouts that exclude one another: one line joined by hyphens, bracketed words, wrapped word pairs,
# paragraphs split by "***" or by a blank line, three "***" paragraphs of fixed sentences, lines of one phrase
_LAYOUTS = (
    "detectable_format:sentence_hyphens",
    "detectable_format:square_brackets",
    "detectable_format:bigram_wrapping",
    "paragraphs:paragraphs",
    "count:counting_composition",
    "copy:repeat_phrase",
)
# every word and mark once: no repeated period, bracket, divider, keyword or first word
_REPEATS = (
    *_LAYOUTS,
    "paragraphs:paragraphs2",
    "first_word:first_word_sent",
    "last_word:last_word_sent",
    "keywords:word_count_different_numbers",
    "count:count_increment_word",
    "keywords:start_end",
)
CONFLICTS = (
    *((a, b) for i, a in enumerate(_LAYOUTS) for b in _LAYOUTS[i + 1 :]),
    *(("count:count_unique", other) for other in _REPEATS),
    # "***" or a line break cuts the hyphen-joined line; a blank line against "***" paragraphs
    ("paragraphs:paragraphs2", "paragraphs:paragraphs"),
    ("paragraphs:paragraphs2", "count:counting_composition"),
    ("paragraphs:paragraphs2", "detectable_format:sentence_hyphens"),
    # a bracketed or wrapped word is neither the bare first word, a palindrome, nor a Treebank word at both ends
    *(
        (layout, other)
        for layout in ("detectable_format:square_brackets", "detectable_format:bigram_wrapping")
        for other in (
            "first_word:first_word_sent",
            "first_word:first_word_answer",
            "keywords:palindrome",
            "keywords:start_end",
        )
    ),
    # two different words asked for the same place
    ("first_word:first_word_sent", "first_word:first_word_answer"),
    ("last_word:last_word_sent", "last_word:last_word_answer"),
    ("first_word:first_word_sent", "keywords:keyword_specific_position"),
    ("first_word:first_word_answer", "keywords:keyword_specific_position"),
    ("keywords:start_end", "last_word:last_word_answer"),
    ("keywords:start_end", "last_word:last_word_sent"),
    ("keywords:start_end", "detectable_format:sentence_hyphens"),
    ("keywords:start_end", "count:counting_composition"),
    # the phrase's lines merge into sentences, and its lower-case words count
    ("copy:repeat_phrase", "first_word:first_word_sent"),
    ("copy:repeat_phrase", "last_word:last_word_sent"),
    ("copy:repeat_phrase", "keywords:no_adjacent_consecutive"),
    ("copy:repeat_phrase", "count:lowercase_counting"),
    # sentences of 3-8 tokens in 3 paragraphs: no late word position, no 300-1,000-letter floor
    ("count:counting_composition", "keywords:keyword_specific_position"),
    ("count:counting_composition", "letters:letter_counting"),
)

_CASE_BOUND = ("keywords:keyword_specific_position", "copy:repeat_phrase")  # keyword or phrase in its own case
_ENGLISH_WORDS = (
    "keywords:word_once",
    "keywords:word_count_different_numbers",
    "count:count_increment_word",
    "keywords:keyword_specific_position",
    "first_word:first_word_sent",
    "first_word:first_word_answer",
    "last_word:last_word_sent",
    "last_word:last_word_answer",
    "copy:repeat_phrase",
)
# IFEval layouts (bullets, highlights, sections, a title, a postscript, placeholders, a fixed ending, a quotation,
# "***" paragraphs) against IFTrain's whole-response layouts, unique words (their marks repeat), and the fixed first
# or last words they take
_IFEVAL_LAYOUTS = {
    "detectable_format:number_bullet_lists": ("first_word:first_word_sent", "keywords:start_end"),
    "detectable_format:number_highlighted_sections": (),
    "detectable_format:multiple_sections": (
        "first_word:first_word_sent",
        "first_word:first_word_answer",
        "keywords:start_end",
        "keywords:keyword_specific_position",
        "paragraphs:paragraphs2",
    ),
    "detectable_format:title": (
        "first_word:first_word_sent",
        "first_word:first_word_answer",
        "keywords:start_end",
        "keywords:keyword_specific_position",
    ),
    "detectable_content:postscript": ("punctuation:punctuation_dot", "first_word:first_word_sent"),
    "detectable_content:number_placeholders": (),
    "startend:end_checker": (
        "last_word:last_word_sent",
        "last_word:last_word_answer",
        "keywords:start_end",
        "first_word:first_word_sent",
    ),
    "startend:quotation": ("first_word:first_word_sent", "first_word:first_word_answer", "keywords:start_end"),
    "length_constraints:number_paragraphs": ("paragraphs:paragraphs2",),
}
IFEVAL_CONFLICTS = (
    # JSON output leaves no room for sentences, layouts or word positions
    *(("detectable_format:json_format", other) for other in SAMPLED_INSTRUCTION_IDS),
    *(
        (ifeval_id, other)
        for ifeval_id, others in _IFEVAL_LAYOUTS.items()
        for other in (*_LAYOUTS, "count:count_unique", *others)
    ),
    # 100-500 words or 3-15 sentences against unique words, 3 short paragraphs, few lower-case words or letters
    *(
        (length, other)
        for length in ("length_constraints:number_words", "length_constraints:number_sentences")
        for other in ("count:count_unique", "count:counting_composition", "letters:letter_counting")
    ),
    ("length_constraints:number_words", "count:lowercase_counting"),
    ("length_constraints:number_sentences", "keywords:keyword_specific_position"),
    ("length_constraints:number_paragraphs", "paragraphs:paragraphs"),
    # case
    ("change_case:english_lowercase", "count:lowercase_counting"),
    *(("change_case:english_lowercase", other) for other in _CASE_BOUND),
    *(("change_case:english_capital", other) for other in _CASE_BOUND),
    # a keyword at least 1-3 times, or a letter count, against its IFTrain twin
    ("keywords:frequency", "count:count_unique"),
    ("keywords:letter_frequency", "letters:letter_counting2"),
    # English keywords and phrases
    *(("language:response_language", other) for other in _ENGLISH_WORDS),
)


def sample_kwargs(instruction_id: str, rng: random.Random, word_pool: Sequence[str]) -> dict[str, Any]:
    r"""
    Draws the arguments of one IFTrain constraint of [`SAMPLED_INSTRUCTION_IDS`].

    Args:
        instruction_id (`str`):
            The IFTrain id.
        rng (`random.Random`):
            Source of every random choice.
        word_pool (`Sequence[str]`):
            Words the keywords are drawn from, in a fixed order (the caller leaves out those already in use).

    Returns:
        `dict[str, Any]`: every argument of the id's checker (empty for ids without arguments).
    """
    if instruction_id not in SAMPLED_INSTRUCTION_IDS:
        raise ValueError(f"{instruction_id!r} is not sampled; sampled ids: {', '.join(SAMPLED_INSTRUCTION_IDS)}.")
    if instruction_id == "copy:repeat_phrase":
        return {"phrase": rng.choice(PHRASES), "small_n": rng.randint(2, 3)}
    if instruction_id in ("keywords:word_once", "keywords:exclude_word_harder"):
        return {"keyword": distinct_keywords(word_pool, rng, 1)[0]}
    if instruction_id == "keywords:word_count_different_numbers":
        keyword = distinct_keywords(word_pool, rng, 1)[0]
        return {"keyword": keyword, "frequency": rng.randint(1, 3), "relation": rng.choice(RELATIONS)}
    if instruction_id == "count:count_increment_word":
        first, second = distinct_keywords(word_pool, rng, 2)
        return {"keyword1": first, "keyword2": second}
    if instruction_id in ("first_word:first_word_sent", "first_word:first_word_answer"):
        return {"first_word": distinct_keywords(word_pool, rng, 1)[0]}
    if instruction_id in ("last_word:last_word_sent", "last_word:last_word_answer"):
        return {"last_word": distinct_keywords(word_pool, rng, 1)[0]}
    if instruction_id == "keywords:keyword_specific_position":
        # the reference: sentence 1-20, word 1-30, an essay of 30-word sentences; here an early position
        return {"keyword": distinct_keywords(word_pool, rng, 1)[0], "n": rng.randint(1, 5), "m": rng.randint(1, 10)}
    if instruction_id == "count:lowercase_counting":
        return {"N": rng.randint(2, 10)}  # the reference: 2-3
    if instruction_id == "letters:letter_counting":
        # the reference: 2-3 letters, "less than 3 letters" is no answer; here a short answer, or a floor
        relation = rng.choice(RELATIONS)
        limit = rng.randrange(300, 1001, 50) if relation == "less than" else rng.randrange(50, 301, 50)
        return {"N": limit, "relation": relation}
    if instruction_id == "letters:letter_counting2":  # IFEval's ranges
        return {
            "letter": rng.choice("abcdefghijklmnopqrstuvwxyz"),
            "let_frequency": rng.randint(1, 10),
            "let_relation": rng.choice(RELATIONS),
        }
    if instruction_id == "count:counting_composition":
        # the reference: 2-3 tokens a sentence, the period one of them; here 4-8
        return {"n_sent": rng.randint(2, 3), "n_words": rng.randint(4, 8)}
    return {}
