"""
Conflict-aware sampling of constraints (used by the rules engine): ids and kwargs drawn from the caller's
`random.Random`, never from lm-eval's use of the global `random` module.
"""

import functools
import random
from collections.abc import Sequence
from typing import Any

from .constraint import Constraint
from .registry import ifeval_registry


RELATIONS = ("less than", "at least")
# Languages of lm-eval's `LANGUAGE_CODES` that langdetect tells apart reliably on short answers.
SAMPLED_LANGUAGES = ("es", "fr", "de", "it", "pt")
# Instruction ids that make sense appended to any instruction. The others need context: `constrained_response` asks
# for a fixed yes/no answer, `two_responses` and `repeat_prompt` change the task, `nth_paragraph_first_word` and
# `capital_word_frequency` are rare in practice.
SAMPLED_INSTRUCTION_IDS = (
    "length_constraints:number_words",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "keywords:existence",
    "keywords:forbidden_words",
    "keywords:frequency",
    "keywords:letter_frequency",
    "detectable_content:postscript",
    "detectable_content:number_placeholders",
    "startend:end_checker",
    "startend:quotation",
    "change_case:english_lowercase",
    "change_case:english_capital",
    "punctuation:no_comma",
    "language:response_language",
)
# Pairs that lm-eval's table allows but that cannot both be followed: section markers are matched case-sensitively
# ("Section 1" / "SECTION 1"), so an all-lowercase or all-capital answer cannot carry them.
_EXTRA_CONFLICTS = (
    ("change_case:english_lowercase", "detectable_format:multiple_sections"),
    ("change_case:english_capital", "detectable_format:multiple_sections"),
)


@functools.cache
def _conflict_table() -> dict[str, frozenset[str]]:
    registry = ifeval_registry()
    table: dict[str, set[str]] = {key: {key} for key in registry.checkers}
    # lm-eval's table is not symmetric (its `conflict_make` is never applied): read it in both directions.
    pairs = [(key, other) for key, others in registry.conflicts.items() for other in others]
    for a, b in [*pairs, *_EXTRA_CONFLICTS]:
        table.setdefault(a, {a}).add(b)
        table.setdefault(b, {b}).add(a)
    return {key: frozenset(value) for key, value in table.items()}


def conflicts(instruction_id: str) -> frozenset[str]:
    """Returns the ids that cannot be combined with `instruction_id` (itself included), in either direction."""
    return _conflict_table().get(instruction_id, frozenset({instruction_id}))


def _sample_kwargs(instruction_id: str, used_words: set[str], rng: random.Random) -> dict[str, Any]:
    # Value ranges follow the defaults of lm-eval's `instructions.py` (`_NUM_*`, `_COMPARISON_RELATION`, ...).
    def words(k: int) -> list[str]:
        return sorted(rng.sample(sorted(set(ifeval_registry().word_list) - used_words), k))

    if instruction_id == "length_constraints:number_words":
        return {"num_words": rng.randrange(100, 501, 10), "relation": rng.choice(RELATIONS)}
    if instruction_id == "length_constraints:number_sentences":
        return {"num_sentences": rng.randint(3, 15), "relation": rng.choice(RELATIONS)}
    if instruction_id == "length_constraints:number_paragraphs":
        return {"num_paragraphs": rng.randint(2, 5)}
    if instruction_id == "detectable_format:number_bullet_lists":
        return {"num_bullets": rng.randint(2, 5)}
    if instruction_id == "detectable_format:number_highlighted_sections":
        return {"num_highlights": rng.randint(1, 4)}
    if instruction_id == "detectable_format:multiple_sections":
        return {"section_spliter": rng.choice(("Section", "SECTION")), "num_sections": rng.randint(2, 5)}
    if instruction_id == "keywords:existence":
        return {"keywords": words(2)}
    if instruction_id == "keywords:forbidden_words":
        return {"forbidden_words": words(2)}
    if instruction_id == "keywords:frequency":
        return {"keyword": words(1)[0], "frequency": rng.randint(1, 3), "relation": rng.choice(RELATIONS)}
    if instruction_id == "keywords:letter_frequency":
        return {
            "letter": rng.choice("abcdefghijklmnopqrstuvwxyz"),
            "let_frequency": rng.randint(1, 10),
            "let_relation": rng.choice(RELATIONS),
        }
    if instruction_id == "detectable_content:postscript":
        return {"postscript_marker": rng.choice(("P.S.", "P.P.S"))}
    if instruction_id == "detectable_content:number_placeholders":
        return {"num_placeholders": rng.randint(1, 4)}
    if instruction_id == "startend:end_checker":
        return {"end_phrase": rng.choice(("Any other questions?", "Is there anything else I can help with?"))}
    if instruction_id == "language:response_language":
        return {"language": rng.choice(SAMPLED_LANGUAGES)}
    return {}


def sample_constraint(existing: Sequence[Constraint], rng: random.Random) -> Constraint | None:
    r"""
    Draws a constraint that can be followed together with `existing`.

    Args:
        existing (`Sequence[Constraint]`):
            Constraints the instruction already carries.
        rng (`random.Random`):
            Source of every random choice (id and kwargs); lm-eval's global `random` is never used.

    Returns:
        [`Constraint`] or `None`: a constraint from `SAMPLED_INSTRUCTION_IDS` that conflicts (in either direction)
        with none of `existing`, or `None` when none is left.
    """
    blocked: set[str] = set()
    used_words: set[str] = set()
    for constraint in existing:
        blocked |= conflicts(constraint.instruction_id)
        for key in ("keywords", "forbidden_words"):
            used_words.update(constraint.kwargs.get(key, ()))
        if "keyword" in constraint.kwargs:
            used_words.add(constraint.kwargs["keyword"])
    existing_ids = {c.instruction_id for c in existing}
    candidates = [
        instruction_id
        for instruction_id in SAMPLED_INSTRUCTION_IDS
        if instruction_id not in blocked and not (conflicts(instruction_id) & existing_ids)
    ]
    if not candidates:
        return None
    instruction_id = rng.choice(candidates)
    return Constraint(instruction_id, _sample_kwargs(instruction_id, used_words, rng))
