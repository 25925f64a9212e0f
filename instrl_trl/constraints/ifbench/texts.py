"""
Instruction texts of the IFBench constraints that `add_constraints` may append, in this project's own words.

IFBench's own `build_description` texts (allenai/IFBench, commit db69a6f) say what each checker verifies; these say
the same with the arguments woven in, phrased so that a response written to the letter of the text passes the
checker in [`CHECKERS`] (for example `count:numbers` says how "3.14" counts, because the checker deletes
punctuation before counting digit runs). Only the ids of [`SAMPLED_INSTRUCTION_IDS`] have a text: the others replace
the task (`custom:*`, `repeat:*`, `format:options`), need context (`ratio:overlap`), or need NLTK's tagger
(`words:start_verb`).
"""

from collections.abc import Mapping
from typing import Any

from .count import PERSON_NAMES


NAMED_PEOPLE = 12

TEXTS: dict[str, str] = {
    "count:word_count_range": "Your answer should be at least {min_words} and at most {max_words} words long.",
    "count:unique_word_count": "Make sure your answer uses {N} or more distinct words.",
    "ratio:stop_words": (
        "Keep stop words (very common words such as 'the', 'of', 'and', 'is' or 'it') to no more than {percentage}% "
        "of all the words you write."
    ),
    "count:conjunctions": (
        "Use at least {small_n} different coordinating conjunctions (for, and, nor, but, or, yet, so) in your answer."
    ),
    # The checker counts any of IFBench's 50 names; a dozen leave room for the 1-6 asked for and keep the text short
    "count:person_names": (
        "Mention at least {N} different people by name, taking the names from this list: "
        + ", ".join(PERSON_NAMES[:NAMED_PEOPLE])
        + "."
    ),
    "count:numbers": (
        "Write exactly {N} numbers in your answer, in digits; a number such as 3.14 or 1,000 counts as one."
    ),
    "count:pronouns": "Use pronouns (such as I, you, they, this or which) at least {N} times in your answer.",
    "count:punctuation": (
        "Use each of these marks at least once: a period, a comma, an exclamation mark, a question mark, a "
        "semicolon, a colon, and an interrobang (?!)."
    ),
    "count:keywords_multiple": (
        "Use '{keyword1}' exactly once, '{keyword2}' exactly twice, '{keyword3}' exactly three times, '{keyword4}' "
        "exactly five times and '{keyword5}' exactly seven times (counting them inside other words too)."
    ),
    "ratio:sentence_type": (
        "Write twice as many statements ending in a period as questions ending in a question mark."
    ),
    "ratio:sentence_balance": (
        "Write as many sentences ending in a period as sentences ending in a question mark and sentences ending in "
        "an exclamation mark."
    ),
    "words:repeats": "Do not use any word more than {small_n} times.",
    "words:no_consecutive": "Never let two neighbouring words begin with the same letter.",
    "words:last_first": "Begin every sentence after the first with the word that ended the sentence before it.",
    "words:keywords_specific_position": "Make '{keyword}' word number {m} of sentence number {n} of your answer.",
    "words:words_position": ("Both the second word of your answer and its second-to-last word must be '{keyword}'."),
    "sentence:keyword": "Include the word '{word}' in sentence number {N} of your answer.",
    "sentence:increment": "Make each sentence exactly {small_n} words longer than the sentence before it.",
    "format:parentheses": (
        "Somewhere in your answer, nest brackets (round, square or curly) at least five levels deep."
    ),
    "format:quotes": (
        "Include a quotation nested at least three levels deep, switching between double and single quotation "
        "marks at each level."
    ),
    "format:emoji": "End every sentence with an emoji.",
    "format:list": "Present your answer as a list of items, each marked with '{sep}' instead of a bullet point.",
    "format:thesis": "Begin each section with a thesis statement in italics, marked up with HTML tags (<i>...</i>).",
    "format:sub-bullets": (
        "Use bullet points marked with * and give every bullet point at least one sub-point marked with -."
    ),
    "format:no_bullets_bullets": (
        "Start with at least two sentences of plain prose that end in periods, then finish with at least two bullet "
        "points marked with * and nothing after them."
    ),
    "format:title_case": "Write your entire answer in title case, starting every word with a capital letter.",
    "format:output_template": (
        "Lay out your answer under these three labels, in this order: 'My Answer:', 'My Conclusion:' and "
        "'Future Outlook:'."
    ),
}
SAMPLED_INSTRUCTION_IDS = tuple(TEXTS)


def describe(instruction_id: str, kwargs: Mapping[str, Any]) -> str:
    """The instruction text of `instruction_id` with `kwargs` woven in; raises `ValueError` for an id without one."""
    if instruction_id not in TEXTS:
        raise ValueError(
            f"IFBench id {instruction_id!r} has a checker but no instruction text here (it replaces the task or needs "
            f"context); texts exist for: {', '.join(TEXTS)}."
        )
    return TEXTS[instruction_id].format(**kwargs)
