"""
What the rules engine reads in an instruction: [`InstructionFeatures`], a handful of surface features that exist in
any instruction (an inquiry or a task, general terms, reasoning cues, material to work on, what earlier operations
already added), so that the engine's rules apply to instructions it has never seen.
"""

import functools
import re
from dataclasses import dataclass

from ...elimination import content_words
from .lexicon import (
    DEPTH_CLAUSES,
    GENERAL_PATTERN,
    INPUT_BLOCK_OPENING,
    INPUT_CUES,
    INQUIRY_OPENERS,
    INSTRUCTION_VERBS,
    MATERIAL_CUES,
    REASONING_CLAUSES,
    REASONING_CUES,
)


def count_words(text: str) -> int:
    return len(text.split())


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.?!])\s|\n", text.strip(), maxsplit=1)[0]


@functools.cache
def _cue_pattern(cues: tuple[str, ...]) -> re.Pattern:
    # One compiled alternation per cue list: the rules run on every step of every episode (and the exact search of
    # `trainer.constant_sequences` plays thousands of sequences), so a regex per cue per call is the hot path
    return re.compile(r"\b(?:" + "|".join(re.escape(cue) for cue in cues) + r")\b")


def _has_cue(text: str, cues: tuple[str, ...]) -> bool:
    return _cue_pattern(cues).search(text.lower()) is not None


def is_inquiry_instruction(text: str) -> bool:
    """
    Whether `text` asks about an issue: its first sentence is a question, or opens with a question word or a request
    to describe, explain, discuss or compare. Every other instruction is a task (it asks for something to be made).
    """
    first_sentence = _first_sentence(text).lower()
    first_word = re.match(r"[a-z']*", first_sentence).group(0)
    return first_sentence.endswith("?") or first_word in INQUIRY_OPENERS or first_sentence.startswith("tell me")


def is_reasoning_instruction(text: str) -> bool:
    """Whether `text` asks for reasoning (calculate, estimate, plan, decide, prove, ...) in its first sentence."""
    return _has_cue(_first_sentence(text), REASONING_CUES)


def has_material(text: str) -> bool:
    """Whether `text` works on some material (code, data, a passage: summarize, translate, debug, sort, ...)."""
    return _has_cue(_first_sentence(text), MATERIAL_CUES)


def find_general_term(text: str) -> re.Match | None:
    """Returns the first general term of [`GENERAL_TERMS`] in `text` (case-insensitive, on word boundaries)."""
    return GENERAL_PATTERN.search(text)


def input_kind(text: str) -> str:
    """The kind of input block that fits `text`: `"code"`, `"numbers"` or `"text"` (see [`INPUT_CUES`])."""
    return next((kind for kind, cues in INPUT_CUES.items() if _has_cue(text, cues)), "text")


def main_topic(text: str) -> str:
    """Returns the instruction's topic: the last run (up to 3 words) of content words in its first sentence."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*|\d+|[^\sA-Za-z\d]", _first_sentence(text))
    runs, run = [], []
    for word in words:
        lowered = word.lower()
        if lowered.isalpha() and lowered not in INSTRUCTION_VERBS and content_words(lowered):
            run.append(word)
        else:
            if run:
                runs.append(run)
            run = []
    if run:
        runs.append(run)
    return " ".join(runs[-1][-3:]).lower() if runs else "this subject"


@dataclass(frozen=True)
class InstructionFeatures:
    r"""
    What the rules engine sees in an instruction (read by [`read_features`]).

    Parameters:
        inquiry (`bool`): it asks about an issue ([`is_inquiry_instruction`]); otherwise it is a task.
        general_term (`bool`): it names a general term that can be made concrete ("a city", "people", ...).
        reasoning (`bool`): its request calls for reasoning ([`is_reasoning_instruction`]).
        material (`bool`): its request works on some material ([`has_material`]).
        deepened (`bool`), reasoning_added (`bool`), input_added (`bool`): a depth clause, a reasoning clause or an
            input block of the engine is already there.
        words (`int`): its length in words.
    """

    inquiry: bool
    general_term: bool
    reasoning: bool
    material: bool
    deepened: bool
    reasoning_added: bool
    input_added: bool
    words: int


def read_features(text: str) -> InstructionFeatures:
    """Reads the [`InstructionFeatures`] of `text`."""
    return InstructionFeatures(
        inquiry=is_inquiry_instruction(text),
        general_term=find_general_term(text) is not None,
        reasoning=is_reasoning_instruction(text),
        material=has_material(text),
        deepened=any(clause in text for clause in DEPTH_CLAUSES),
        reasoning_added=any(clause in text for clause in REASONING_CLAUSES),
        input_added=INPUT_BLOCK_OPENING in text,
        words=count_words(text),
    )
