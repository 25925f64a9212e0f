"""
IFBench's 58 instruction ids, each mapped to the checker class that reproduces IFBench's verdict.

IFBench's own registry also lists the 25 classic IFEval ids; IFBench's test set uses none of them, and this project
checks them through lm-eval's IFEval registry instead (`instrl_trl.constraints`), so they are not repeated here.
"""

from collections.abc import Mapping
from typing import Any

from . import count, custom, ratio, repeat, sentence, words
from . import format as formatting
from .base import Checker, drop_nulls


CHECKERS: dict[str, type[Checker]] = {
    "count:word_count_range": count.WordCountRange,
    "count:unique_word_count": count.UniqueWordCount,
    "count:conjunctions": count.Conjunctions,
    "count:person_names": count.PersonNames,
    "count:numbers": count.Numbers,
    "count:punctuation": count.PunctuationCover,
    "count:words_japanese": count.NthWordJapanese,
    "count:pronouns": count.Pronouns,
    "count:keywords_multiple": count.KeywordsMultiple,
    "ratio:stop_words": ratio.StopWords,
    "ratio:sentence_type": ratio.SentenceType,
    "ratio:sentence_balance": ratio.SentenceBalance,
    "ratio:overlap": ratio.TrigramOverlap,
    "ratio:sentence_words": ratio.SentenceWords,
    "words:alphabet": words.AlphabetLoop,
    "words:vowel": words.ThreeVowels,
    "words:consonants": words.ConsonantClusters,
    "words:palindrome": words.Palindromes,
    "words:prime_lengths": words.PrimeLengths,
    "words:start_verb": words.StartsWithVerb,
    "words:repeats": words.LimitedRepeats,
    "words:odd_even_syllables": words.AlternatingSyllables,
    "words:last_first": words.LastWordFirst,
    "words:paragraph_last_first": words.ParagraphLastFirst,
    "words:no_consecutive": words.NoConsecutiveFirstLetter,
    "words:keywords_specific_position": words.KeywordSpecificPosition,
    "words:words_position": words.WordsPosition,
    "sentence:alliteration_increment": sentence.AlliterationIncrement,
    "sentence:keyword": sentence.KeywordInSentence,
    "sentence:increment": sentence.WordCountIncrement,
    "format:parentheses": formatting.NestedBrackets,
    "format:quotes": formatting.NestedQuotes,
    "format:options": formatting.Options,
    "format:newline": formatting.WordPerLine,
    "format:emoji": formatting.EmojiPerSentence,
    "format:line_indent": formatting.IndentStairs,
    "format:quote_unquote": formatting.QuoteThenExplanation,
    "format:list": formatting.CustomBullets,
    "format:thesis": formatting.ItalicThesis,
    "format:sub-bullets": formatting.SubBullets,
    "format:no_bullets_bullets": formatting.SentencesThenBullets,
    "format:title_case": formatting.TitleCase,
    "format:output_template": formatting.OutputTemplate,
    "format:no_whitespace": formatting.NoWhitespace,
    "custom:multiples": custom.MultiplesOfSeven,
    "custom:mcq_count_length": custom.MultipleChoiceQuestions,
    "custom:reverse_newline": custom.ReverseAlphabeticalLines,
    "custom:word_reverse": custom.WordReverse,
    "custom:character_reverse": custom.CharacterReverse,
    "custom:sentence_alphabet": custom.SentenceAlphabet,
    "custom:european_capitals_sort": custom.EuropeanCapitals,
    "custom:csv_city": custom.CityCsv,
    "custom:csv_special_character": custom.SpecialCharacterCsv,
    "custom:csv_quotes": custom.QuotedTsv,
    "custom:date_format_list": custom.NapoleonDates,
    "repeat:repeat_change": repeat.RepeatChanged,
    "repeat:repeat_simple": repeat.RepeatSimple,
    "repeat:repeat_span": repeat.RepeatSpan,
}


def instruction_ids() -> list[str]:
    """The IFBench instruction ids that have a checker here."""
    return list(CHECKERS)


def build_checker(instruction_id: str, kwargs: Mapping[str, Any] | None) -> Checker:
    """
    Builds the checker of one instruction from an IFBench kwargs dict (null entries are dropped first).

    Raises `ValueError` (or `TypeError`) for an unknown id or kwargs that do not fit, and [`CheckerUnavailable`]
    when the checker's data cannot be had offline.
    """
    if instruction_id not in CHECKERS:
        raise ValueError(
            f"unknown IFBench instruction id {instruction_id!r}; IFBench's ids are: {', '.join(CHECKERS)} "
            "(classic IFEval ids are checked by `instrl_trl.constraints`)."
        )
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ValueError(f"{instruction_id}: kwargs must be a dict, got {kwargs!r}.")
    return CHECKERS[instruction_id].build(instruction_id, **drop_nulls(kwargs))
