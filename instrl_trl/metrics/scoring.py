"""
Scores from row verdicts: each row is checked once ([`check_rows`]), and [`aggregate`] turns the verdicts into
lm-eval's four scores and the breakdowns. The `instruction_following` metric and the `evaluate` stage both use them.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..constraints import InvalidReferenceError, RowVerdict
from .benchmarks import BenchmarkAdapter, RowSkipped


ON_INVALID_CHOICES = ("skip", "raise")


@dataclass(frozen=True)
class RowResult:
    r"""
    The outcome of checking one row.

    Parameters:
        index (`int`):
            Position of the row in the benchmark.
        key (`Any`):
            The row's `key` (`None` when the row could not be read).
        instruction_id_list (`list[str]`):
            The row's instruction ids (empty when the row could not be read).
        verdict ([`~instrl_trl.constraints.RowVerdict`] or `None`):
            The verdicts; `None` when the row was skipped.
        reason (`str` or `None`):
            Why the row was skipped.
    """

    index: int
    key: Any
    instruction_id_list: list[str]
    verdict: RowVerdict | None
    reason: str | None = None


def skip_row(index: int, key: Any, error: InvalidReferenceError, on_invalid: str = "skip") -> RowResult:
    """The result of a row that cannot be scored: a skipped row, or a `ValueError` naming its key (`"raise"`)."""
    if on_invalid == "raise":
        raise ValueError(
            f"Reference {index} (key {key!r}) cannot be scored: {error}. Fix the row, or pass "
            '`on_invalid="skip"` to leave it out and list it under `skipped`.'
        ) from error
    return RowResult(index=index, key=key, instruction_id_list=[], verdict=None, reason=str(error))


def check_rows(
    benchmark: BenchmarkAdapter, rows: Sequence[Mapping], responses: Sequence[str], on_invalid: str = "skip"
) -> list[RowResult]:
    r"""
    Checks each response against its row, once.

    Args:
        benchmark ([`BenchmarkAdapter`]):
            How the rows are checked.
        rows (`Sequence[Mapping]`):
            The benchmark's rows.
        responses (`Sequence[str]`):
            One response per row.
        on_invalid (`str`, *optional*, defaults to `"skip"`):
            `"skip"` keeps a row that cannot be scored as a skipped [`RowResult`]; `"raise"` raises a `ValueError`.
            A valid row whose checker cannot run here ([`~instrl_trl.metrics.benchmarks.RowSkipped`]) is skipped
            either way.

    Returns:
        `list[RowResult]`: one per row, in order.
    """
    if on_invalid not in ON_INVALID_CHOICES:
        raise ValueError(f"`on_invalid` must be one of {ON_INVALID_CHOICES}, got {on_invalid!r}.")
    return [
        check_one_row(benchmark, index, row, response, on_invalid)
        for index, (row, response) in enumerate(zip(rows, responses, strict=True))
    ]


def check_one_row(
    benchmark: BenchmarkAdapter, index: int, row: Mapping, response: str, on_invalid: str = "skip"
) -> RowResult:
    """Checks `response` against `row` (the benchmark's row `index`); see [`check_rows`]."""
    try:
        verdict = benchmark.check(row, response)
    except InvalidReferenceError as error:
        return skip_row(index, row.get("key"), error, on_invalid)
    except RowSkipped as error:
        return RowResult(index=index, key=row.get("key"), instruction_id_list=[], verdict=None, reason=str(error))
    return RowResult(index, row.get("key"), list(row["instruction_id_list"]), verdict)


def _mean(values: list[bool]) -> float:
    # lm-eval's `mean` and `agg_inst_level_acc`: an exact integer sum over a count, so the floats are equal.
    return sum(values) / len(values) if values else float("nan")


def aggregate(results: Sequence[RowResult]) -> dict[str, Any]:
    """lm-eval's four scores over the scored rows, the breakdowns by instruction and by count, and the skipped rows."""
    prompt_strict, prompt_loose, inst_strict, inst_loose = [], [], [], []
    by_instruction = defaultdict(lambda: ([], []))
    by_num_constraints = defaultdict(lambda: ([], []))
    for result in results:
        verdict = result.verdict
        if verdict is None:
            continue
        prompt_strict.append(verdict.prompt_level_strict)
        prompt_loose.append(verdict.prompt_level_loose)
        inst_strict.extend(verdict.strict)
        inst_loose.extend(verdict.loose)
        for instruction_id, strict, loose in zip(
            result.instruction_id_list, verdict.strict, verdict.loose, strict=True
        ):
            by_instruction[instruction_id][0].append(strict)
            by_instruction[instruction_id][1].append(loose)
        by_num_constraints[len(verdict.strict)][0].append(verdict.prompt_level_strict)
        by_num_constraints[len(verdict.strict)][1].append(verdict.prompt_level_loose)
    skipped = [{"index": r.index, "key": r.key, "reason": r.reason} for r in results if r.verdict is None]
    return {
        "prompt_level_strict_acc": _mean(prompt_strict),
        "inst_level_strict_acc": _mean(inst_strict),
        "prompt_level_loose_acc": _mean(prompt_loose),
        "inst_level_loose_acc": _mean(inst_loose),
        "num_scored": len(prompt_strict),
        "by_instruction": {
            instruction_id: {
                "inst_level_strict_acc": _mean(strict),
                "inst_level_loose_acc": _mean(loose),
                "count": len(strict),
            }
            for instruction_id, (strict, loose) in sorted(by_instruction.items())
        },
        "by_num_constraints": {
            k: {"prompt_level_strict_acc": _mean(strict), "prompt_level_loose_acc": _mean(loose), "count": len(strict)}
            for k, (strict, loose) in sorted(by_num_constraints.items())
        },
        "num_skipped": len(skipped),
        "skipped": skipped,
    }
