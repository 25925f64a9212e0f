"""
Instruction texts of the IFTrain constraints that `add_constraints` may append, in this project's own words.

The reference's `build_description` texts (allenai/open-instruct `IFEvalG`, commit ebca9f7d4) do not always say what
their checks verify: `count:counting_composition` asks for a "* * *" divider and splits on "***",
`count:lowercase_counting` says "each lowercase word at most N times" and counts all of them together,
`keywords:word_count_different_numbers` drops its relation. These texts say what the checker in [`CHECKERS`]
accepts, so that a response written to the letter of the text passes it. Only the ids of [`SAMPLED_INSTRUCTION_IDS`]
have a text: the copy ids (`copy:copy`, `copy:copying_simple`, `copy:copying_multiple`, `new:copy_span_idx`)
replace the task and take the request itself as an argument.
"""

from collections.abc import Mapping
from typing import Any


TEXTS: dict[str, str] = {
    "copy:repeat_phrase": (
        "Somewhere in your answer, write the phrase '{phrase}' exactly {small_n} times, each on a line of its own and "
        "each time with exactly one of its inner words replaced by another single word (keep its first and last "
        "words); nowhere else put its first word before its last word on one line."
    ),
    "detectable_format:sentence_hyphens": (
        "Write your whole answer on one line, joining consecutive sentences with a hyphen and no spaces around it "
        "(like 'It rained.-We stayed in.'), and use no other hyphen."
    ),
    "keywords:no_adjacent_consecutive": (
        "Never let a word be followed by a word starting with the next letter of the alphabet (no 'a' then 'b', no "
        "'s' then 't')."
    ),
    "detectable_format:square_brackets": "Put every word of your answer in its own square brackets, like [this].",
    "keywords:word_once": "Use the word '{keyword}' exactly once (it also counts inside longer words).",
    "keywords:word_count_different_numbers": (
        "Use the word '{keyword}' {relation} {frequency} times (it also counts inside longer words)."
    ),
    "keywords:exclude_word_harder": "Do not use the word '{keyword}'.",
    "paragraphs:paragraphs": ("Write exactly 2 paragraphs, separated by the markdown divider *** (and no other ***)."),
    "paragraphs:paragraphs2": (
        "Write exactly 2 paragraphs, separated by one blank line, with no other blank line in your answer."
    ),
    "first_word:first_word_sent": "Start every sentence with the word '{first_word}', with no comma right after it.",
    "first_word:first_word_answer": (
        "The very first word of your answer must be '{first_word}', with no punctuation attached to it."
    ),
    "last_word:last_word_sent": "End every sentence with the word '{last_word}', right before its closing mark.",
    "last_word:last_word_answer": "The very last word of your answer must be '{last_word}'.",
    "detectable_format:bigram_wrapping": (
        "Wrap every pair of consecutive words in double angle brackets, like <<The river>> <<runs fast>>."
    ),
    "punctuation:punctuation_dot": "Do not use a single period (.) anywhere in your answer, not even in numbers.",
    "punctuation:punctuation_exclamation": "Do not use any exclamation marks (!).",
    "count:lowercase_counting": (
        "Write at most {N} words in all-lowercase letters in your whole answer; capitalise every other word."
    ),
    "letters:letter_counting": "Your answer must contain {relation} {N} letters (a-z, A-Z) in total.",
    "letters:letter_counting2": "The letter '{letter}' (any case) must appear {let_relation} {let_frequency} times.",
    "count:counting_composition": (
        "Write exactly 3 paragraphs separated by the markdown divider ***; each paragraph has exactly {n_sent} "
        "sentences and each sentence exactly {n_words} words, where every punctuation mark counts as a word."
    ),
    "count:count_unique": (
        "Never repeat a word or a punctuation mark: each word and each mark may appear only once in your answer."
    ),
    "count:count_increment_word": (
        "Use the word '{keyword1}' exactly once and the word '{keyword2}' exactly twice (they also count inside "
        "longer words)."
    ),
    "keywords:palindrome": "Include at least one word that reads the same backwards, such as 'level' or 'noon'.",
    "keywords:keyword_specific_position": (
        "Make '{keyword}' word number {m} of sentence number {n}, in exactly these letters, counting punctuation "
        "marks as words."
    ),
    "keywords:start_end": (
        "Start and end your answer with the same word, and write nothing after that last word, not even punctuation."
    ),
}
SAMPLED_INSTRUCTION_IDS = tuple(TEXTS)


def describe(instruction_id: str, kwargs: Mapping[str, Any]) -> str:
    """The instruction text of `instruction_id` with `kwargs` woven in; raises `ValueError` for an id without one."""
    if instruction_id not in TEXTS:
        raise ValueError(
            f"IFTrain id {instruction_id!r} has a checker but no instruction text here (it replaces the task and "
            f"takes the request as an argument); texts exist for: {', '.join(TEXTS)}."
        )
    return TEXTS[instruction_id].format(**kwargs)
