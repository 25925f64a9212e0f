"""Evaluation: verifiable-instruction checks over lm-eval's IFEval registry (what the `evaluate` metric aggregates)."""

from .constraints import (
    InvalidReferenceError,
    RowVerdict,
    build_checkers,
    check_row,
    instruction_ids,
    loose_variants,
)


__all__ = ["InvalidReferenceError", "RowVerdict", "build_checkers", "check_row", "instruction_ids", "loose_variants"]
