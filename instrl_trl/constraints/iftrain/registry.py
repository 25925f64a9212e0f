"""
IFTrain's 29 instruction ids, each mapped to the checker class that reproduces the reference verdict.

The ids are the "New Constraints!" of allenai/open-instruct `open_instruct/IFEvalG/instructions_registry.py` (commit
ebca9f7d4): the IF-RLVR training constraints that the IFBench paper (huggingface.co/papers/2507.02833) releases as
IFTrain. The same registry also lists IFEval's 25 ids with IFEval's own checkers (and ranges); this project checks
those through lm-eval's registry (`instrl_trl.constraints`), so they are not repeated here.
"""

from collections.abc import Mapping
from typing import Any

from ..ifbench.base import drop_nulls
from . import copying, layout, words
from .base import IFTrainChecker


CHECKERS: dict[str, type[IFTrainChecker]] = {
    "copy:repeat_phrase": copying.RepeatPhrase,
    "copy:copy": copying.CopyRequest,
    "new:copy_span_idx": copying.CopySpan,
    "detectable_format:sentence_hyphens": layout.SentenceHyphens,
    "keywords:no_adjacent_consecutive": words.NoAdjacentConsecutive,
    "detectable_format:square_brackets": layout.SquareBrackets,
    "keywords:word_once": words.WordOnce,
    "keywords:word_count_different_numbers": words.WordCountDifferentNumbers,
    "keywords:exclude_word_harder": words.ExcludeWordHarder,
    "paragraphs:paragraphs": layout.TwoParagraphsDivider,
    "paragraphs:paragraphs2": layout.TwoParagraphsBlankLine,
    "first_word:first_word_sent": words.FirstWordOfSentences,
    "first_word:first_word_answer": words.FirstWordOfAnswer,
    "last_word:last_word_sent": words.LastWordOfSentences,
    "last_word:last_word_answer": words.LastWordOfAnswer,
    "detectable_format:bigram_wrapping": layout.BigramWrapping,
    "copy:copying_simple": copying.CopyRequest,
    "copy:copying_multiple": copying.CopyRequestTimes,
    "punctuation:punctuation_dot": layout.NoDots,
    "punctuation:punctuation_exclamation": layout.NoExclamationMarks,
    "count:lowercase_counting": layout.LowercaseCounting,
    "letters:letter_counting": layout.LetterCounting,
    "letters:letter_counting2": layout.LetterFrequency,
    "count:counting_composition": layout.CountingComposition,
    "count:count_unique": layout.UniqueWords,
    "count:count_increment_word": words.CountIncrementWord,
    "keywords:palindrome": words.Palindrome,
    "keywords:keyword_specific_position": words.KeywordSpecificPosition,
    "keywords:start_end": words.StartEnd,
}


def instruction_ids() -> list[str]:
    """The IFTrain instruction ids that have a checker here (29)."""
    return list(CHECKERS)


def build_checker(instruction_id: str, kwargs: Mapping[str, Any] | None) -> IFTrainChecker:
    """
    Builds the checker of one IFTrain instruction from its kwargs (null entries are dropped first, as open-instruct's
    verifier drops them).

    Raises `ValueError` (or `TypeError`) for an unknown id or kwargs that do not fit; the message names the field.
    """
    if instruction_id not in CHECKERS:
        raise ValueError(
            f"unknown IFTrain instruction id {instruction_id!r}; IFTrain's ids are: {', '.join(CHECKERS)} "
            "(IFEval ids are checked by `instrl_trl.constraints`)."
        )
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ValueError(f"{instruction_id}: kwargs must be a dict, got {kwargs!r}.")
    return CHECKERS[instruction_id].build(instruction_id, **drop_nulls(kwargs))


def follows(checker: IFTrainChecker, response: str) -> bool:
    """The reference's verdict of a built checker: a blank response follows nothing, and the checker is not asked."""
    return bool(response.strip()) and checker.check(response)
