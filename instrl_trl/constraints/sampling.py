"""
Conflict-aware sampling of constraints (used by `add_constraints`): ids and kwargs drawn from the caller's
`random.Random`, never from lm-eval's use of the global `random` module, from the constraint families the caller
chooses (`ifeval` by default; `[ifeval, iftrain]` is IF-RLVR's training set-up; see [`CONSTRAINT_FAMILIES`]). The
rewriters refuse a test family (`ifbench`) when their config is made ([`check_constraint_families`]); `ifbench` is
drawn here only to test that family's texts and conflicts, never for training data.

Conflicts: lm-eval's IFEval table (read both ways) plus [`_EXTRA_CONFLICTS`]; IFBench ships none for its ids and
IFTrain's reference table covers few of its pairs, so their pairs are written in `ifbench/sampling.py` and
`iftrain/sampling.py` (IFTrain's against IFEval's there too); IFEval's against IFBench's are
[`_CROSS_FAMILY_CONFLICTS`]. All were chosen by reading the checkers: two constraints clash when their texts
contradict (case, length, layout) or when their checkers cannot both pass for some arguments drawn here. IFTrain's and
IFBench's ids are never drawn together (one family trains, the other tests): every pair of them is a conflict.
"""

import functools
import random
from collections.abc import Iterable, Sequence
from typing import Any

from .constraint import Constraint
from .families import CONSTRAINT_FAMILIES, DEFAULT_CONSTRAINT_FAMILIES, check_constraint_families, family_of
from .ifbench import sampling as ifbench_sampling
from .iftrain import sampling as iftrain_sampling
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
SAMPLED_IFBENCH_INSTRUCTION_IDS = ifbench_sampling.SAMPLED_INSTRUCTION_IDS
SAMPLED_IFTRAIN_INSTRUCTION_IDS = iftrain_sampling.SAMPLED_INSTRUCTION_IDS
# Pairs that lm-eval's table allows but that cannot both be followed: section markers are matched case-sensitively
# ("Section 1" / "SECTION 1"), so an all-lowercase or all-capital answer cannot carry them.
_EXTRA_CONFLICTS = (
    ("change_case:english_lowercase", "detectable_format:multiple_sections"),
    ("change_case:english_capital", "detectable_format:multiple_sections"),
)
_IFBENCH_IDS = SAMPLED_IFBENCH_INSTRUCTION_IDS
_CROSS_FAMILY_CONFLICTS = (
    # JSON output leaves no room for sentences, layouts or word positions
    *(("detectable_format:json_format", other) for other in _IFBENCH_IDS),
    # two word counts (IFEval's 100-500 "less than" / "at least" against a range, or 100-500 unique words)
    ("length_constraints:number_words", "count:word_count_range"),
    ("length_constraints:number_words", "count:unique_word_count"),
    # fewer sentences than the one that must hold the keyword
    ("length_constraints:number_sentences", "sentence:keyword"),
    ("length_constraints:number_sentences", "words:keywords_specific_position"),
    # IFEval's "***" paragraph separator starts with "*", which IFBench reads as a bullet
    ("length_constraints:number_paragraphs", "format:no_bullets_bullets"),
    ("length_constraints:number_paragraphs", "format:sub-bullets"),
    # case: title case, case-sensitive labels, names, markers ("SEPARATOR") and HTML tags ("<i>")
    ("change_case:english_lowercase", "format:title_case"),
    ("change_case:english_lowercase", "format:output_template"),
    ("change_case:english_lowercase", "format:list"),
    ("change_case:english_lowercase", "count:person_names"),
    ("change_case:english_capital", "format:title_case"),
    ("change_case:english_capital", "format:output_template"),
    ("change_case:english_capital", "format:thesis"),
    ("change_case:english_capital", "count:person_names"),
    ("detectable_content:number_placeholders", "format:title_case"),
    # punctuation: every mark including the comma
    ("punctuation:no_comma", "count:punctuation"),
    # English word lists and English keywords or labels
    *(
        ("language:response_language", other)
        for other in (
            "count:conjunctions",
            "count:pronouns",
            "ratio:stop_words",
            "count:keywords_multiple",
            "words:words_position",
            "sentence:keyword",
            "words:keywords_specific_position",
            "format:output_template",
        )
    ),
    # the fixed start or end of the response against the word or emoji that must be there
    ("startend:end_checker", "format:emoji"),
    ("startend:end_checker", "words:words_position"),
    ("startend:quotation", "words:words_position"),
    # the closing quote ends the last sentence, which then ends in no period, question or exclamation mark
    ("startend:quotation", "ratio:sentence_type"),
    ("startend:quotation", "ratio:sentence_balance"),
    ("detectable_format:title", "words:words_position"),
    ("detectable_format:multiple_sections", "words:words_position"),
    # "Section 1" is a number; section headers after the bullets
    ("detectable_format:multiple_sections", "count:numbers"),
    ("detectable_format:multiple_sections", "format:no_bullets_bullets"),
    # bullet layouts: IFEval counts "*" and "-" lines, "*text*" highlights split IFBench's sub-bullets
    ("detectable_format:number_bullet_lists", "format:sub-bullets"),
    ("detectable_format:number_bullet_lists", "format:list"),
    ("detectable_format:number_highlighted_sections", "format:sub-bullets"),
    # a postscript after the bullets, which must end the response
    ("detectable_content:postscript", "format:no_bullets_bullets"),
    # a keyword at least 1-3 times against at most 1-5 repeats of any word
    ("keywords:frequency", "words:repeats"),
)
# a training family and a test family are never drawn together (see the module docstring)
_TRAIN_TEST_CONFLICTS = tuple((a, b) for a in SAMPLED_IFTRAIN_INSTRUCTION_IDS for b in _IFBENCH_IDS)
SAMPLED_IDS_BY_FAMILY = {
    "ifeval": SAMPLED_INSTRUCTION_IDS,
    "iftrain": SAMPLED_IFTRAIN_INSTRUCTION_IDS,
    "ifbench": SAMPLED_IFBENCH_INSTRUCTION_IDS,
}
# Keyword-like arguments, kept distinct across the constraints of one instruction
_WORD_ARGUMENTS = (
    "keywords",
    "forbidden_words",
    "keyword",
    "word",
    "first_word",
    "last_word",
    *(f"keyword{i}" for i in range(1, 6)),
)
_OWN_SAMPLERS = {"ifbench": ifbench_sampling.sample_kwargs, "iftrain": iftrain_sampling.sample_kwargs}


@functools.cache
def _conflict_table() -> dict[str, frozenset[str]]:
    registry = ifeval_registry()
    table: dict[str, set[str]] = {key: {key} for key in registry.checkers}
    # lm-eval's table is not symmetric (its `conflict_make` is never applied): read it in both directions.
    pairs = [(key, other) for key, others in registry.conflicts.items() for other in others]
    own = [*ifbench_sampling.CONFLICTS, *iftrain_sampling.CONFLICTS, *iftrain_sampling.IFEVAL_CONFLICTS]
    for a, b in [*pairs, *_EXTRA_CONFLICTS, *own, *_CROSS_FAMILY_CONFLICTS, *_TRAIN_TEST_CONFLICTS]:
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


def sampled_instruction_ids(families: Iterable[str] = DEFAULT_CONSTRAINT_FAMILIES) -> tuple[str, ...]:
    """The ids [`sample_constraint`] draws from for `families`, IFEval's first whatever the order given."""
    chosen = check_constraint_families(families, "families", for_training=False)
    return tuple(iid for family in CONSTRAINT_FAMILIES if family in chosen for iid in SAMPLED_IDS_BY_FAMILY[family])


def sample_constraint(
    existing: Sequence[Constraint],
    rng: random.Random,
    families: Iterable[str] = DEFAULT_CONSTRAINT_FAMILIES,
) -> Constraint | None:
    r"""
    Draws a constraint that can be followed together with `existing`.

    Args:
        existing (`Sequence[Constraint]`):
            Constraints the instruction already carries (of any family).
        rng (`random.Random`):
            Source of every random choice (id and kwargs); lm-eval's global `random` is never used.
        families (`Iterable[str]`, *optional*, defaults to `("ifeval",)`):
            Constraint families to draw from ([`CONSTRAINT_FAMILIES`]): `"ifeval"` ([`SAMPLED_INSTRUCTION_IDS`]),
            `"iftrain"` ([`SAMPLED_IFTRAIN_INSTRUCTION_IDS`]) and/or `"ifbench"` ([`SAMPLED_IFBENCH_INSTRUCTION_IDS`]).
            The id is drawn uniformly from the chosen ids.

    Returns:
        [`Constraint`] or `None`: a constraint of the chosen families that conflicts (in either direction) with none
        of `existing`, or `None` when none is left.

    Raises:
        `ValueError`: `families` is empty or names an unknown family.
    """
    sampled = sampled_instruction_ids(families)
    blocked: set[str] = set()
    used_words: set[str] = set()
    for constraint in existing:
        blocked |= conflicts(constraint.instruction_id)
        for key in _WORD_ARGUMENTS:
            value = constraint.kwargs.get(key, ())
            used_words.update([value] if isinstance(value, str) else value)
    existing_ids = {c.instruction_id for c in existing}
    candidates = [
        instruction_id
        for instruction_id in sampled
        if instruction_id not in blocked and not (conflicts(instruction_id) & existing_ids)
    ]
    if not candidates:
        return None
    instruction_id = rng.choice(candidates)
    family = family_of(instruction_id)
    if family in _OWN_SAMPLERS:
        word_pool = sorted(set(ifeval_registry().word_list) - used_words)
        return Constraint(instruction_id, _OWN_SAMPLERS[family](instruction_id, rng, word_pool))
    return Constraint(instruction_id, _sample_kwargs(instruction_id, used_words, rng))
