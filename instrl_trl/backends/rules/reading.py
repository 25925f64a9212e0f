"""What the rules engine reads in an instruction: its length, whether it is an inquiry or a reasoning task, its
general terms and its topic."""

import re

from ...elimination import content_words
from .lexicon import GENERAL_PATTERN, INQUIRY_CUES, INSTRUCTION_VERBS, REASONING_CUES


def count_words(text: str) -> int:
    return len(text.split())


def is_reasoning_instruction(text: str) -> bool:
    """Returns whether `text` asks for reasoning (calculation, comparison, planning, explanation, ...)."""
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(cue)}\b", lowered) for cue in REASONING_CUES)


def is_inquiry_instruction(text: str) -> bool:
    """Returns whether `text` asks about an issue (a question, or a request to describe, explain, compare, ...)."""
    lowered = text.lower()
    # only the first sentence counts as the question: appended constraints may quote one ("Any other questions?")
    first_sentence = re.split(r"(?<=[.?!])\s", lowered.strip(), maxsplit=1)[0]
    return first_sentence.endswith("?") or any(re.search(rf"\b{re.escape(cue)}\b", lowered) for cue in INQUIRY_CUES)


def find_general_term(text: str) -> re.Match | None:
    """Returns the first general term of [`GENERAL_TERMS`] in `text` (case-insensitive, on word boundaries)."""
    return GENERAL_PATTERN.search(text)


def main_topic(text: str) -> str:
    """Returns the instruction's topic: the last run (up to 3 words) of content words in its first sentence."""
    first_sentence = re.split(r"(?<=[.?!])\s|\n", text.strip(), maxsplit=1)[0]
    words = re.findall(r"[A-Za-z][A-Za-z'-]*|\d+|[^\sA-Za-z\d]", first_sentence)
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
