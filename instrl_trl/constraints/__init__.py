"""
Verifiable constraints (IFEval style): one owner for lm-eval's IFEval registry, serving generation (a row's
`verified`), the benchmark metric and the rules engine.

- `registry`: lm-eval's registry, imported offline (punkt_tab) with langdetect seeded; the only module that imports it.
- `constraint`: the [`Constraint`] type (id + every `build_description` argument).
- `checking`: lm-eval's strict and loose verdicts of a response on a row ([`check_row`]), refusing random ones.
- `sampling`: conflict-aware [`sample_constraint`] from the caller's `random.Random`.
"""

from .checking import (
    InvalidReferenceError,
    RowVerdict,
    build_checker,
    build_checkers,
    check_row,
    drop_empty_kwargs,
    loose_variants,
)
from .constraint import Constraint
from .registry import ensure_punkt_tab, instruction_ids, nltk_data_dir
from .sampling import RELATIONS, SAMPLED_INSTRUCTION_IDS, SAMPLED_LANGUAGES, conflicts, sample_constraint


__all__ = [
    "RELATIONS",
    "SAMPLED_INSTRUCTION_IDS",
    "SAMPLED_LANGUAGES",
    "Constraint",
    "InvalidReferenceError",
    "RowVerdict",
    "build_checker",
    "build_checkers",
    "check_row",
    "conflicts",
    "drop_empty_kwargs",
    "ensure_punkt_tab",
    "instruction_ids",
    "loose_variants",
    "nltk_data_dir",
    "sample_constraint",
]
