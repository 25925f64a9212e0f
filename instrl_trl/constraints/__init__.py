"""
Verifiable constraints (IFEval style): one owner for lm-eval's IFEval registry, IFTrain's and IFBench's checkers,
serving generation (a row's `verified`), the benchmark metric and the rewriters' `add_constraints`.

- `registry`: lm-eval's registry, imported offline (punkt_tab) with langdetect seeded; the only module that imports it.
- `iftrain`: IFTrain's 29 training checkers (IF-RLVR's, from open-instruct's `IFEvalG`) in this project's words, and
  texts and arguments of the ones `add_constraints` may draw.
- `ifbench`: IFBench's checkers in this project's words, their row scoring, and texts and arguments of the ones
  `add_constraints` may draw.
- `families`: the constraint families (`ifeval`, `iftrain`, `ifbench`) and the check of a recipe's choice of them
  (no test family for training data).
- `constraint`: the [`Constraint`] type (id + every argument of its checker), for every family.
- `checking`: lm-eval's strict and loose verdicts of a response on a row ([`check_row`]), refusing random ones.
- `sampling`: conflict-aware [`sample_constraint`] from the caller's `random.Random` and the chosen families.

IFBench is an out-of-distribution benchmark: the `ifbench` family scores its rows, and its texts and samplers exist,
but no config that makes training data accepts it (training on IFBench's test constraints contaminates the benchmark).
`evaluate` compares a benchmark's ids with the training data's and says when they overlap.
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
from .families import (
    CONSTRAINT_FAMILIES,
    DEFAULT_CONSTRAINT_FAMILIES,
    TEST_CONSTRAINT_FAMILIES,
    TRAINING_CONSTRAINT_FAMILIES,
    check_constraint_families,
    family_of,
)
from .registry import ensure_punkt_tab, instruction_ids, nltk_data_dir
from .sampling import (
    RELATIONS,
    SAMPLED_IFBENCH_INSTRUCTION_IDS,
    SAMPLED_IFTRAIN_INSTRUCTION_IDS,
    SAMPLED_INSTRUCTION_IDS,
    SAMPLED_LANGUAGES,
    conflicts,
    sample_constraint,
    sampled_instruction_ids,
)


__all__ = [
    "CONSTRAINT_FAMILIES",
    "DEFAULT_CONSTRAINT_FAMILIES",
    "RELATIONS",
    "SAMPLED_IFBENCH_INSTRUCTION_IDS",
    "SAMPLED_IFTRAIN_INSTRUCTION_IDS",
    "SAMPLED_INSTRUCTION_IDS",
    "SAMPLED_LANGUAGES",
    "TEST_CONSTRAINT_FAMILIES",
    "TRAINING_CONSTRAINT_FAMILIES",
    "Constraint",
    "InvalidReferenceError",
    "RowVerdict",
    "build_checker",
    "build_checkers",
    "check_constraint_families",
    "check_row",
    "conflicts",
    "drop_empty_kwargs",
    "ensure_punkt_tab",
    "family_of",
    "instruction_ids",
    "loose_variants",
    "nltk_data_dir",
    "sample_constraint",
    "sampled_instruction_ids",
]
