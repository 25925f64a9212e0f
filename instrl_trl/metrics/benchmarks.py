"""
Benchmark adapters: what the `evaluate` stage and the `instruction_following` metric need to know about one benchmark
(its columns, how a row is checked, the names of its scores, its packaged offline sample), looked up by name.

A new benchmark is one [`BenchmarkAdapter`] added to [`BENCHMARKS`]; the stage and the metric do not change.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from ..constraints import InvalidReferenceError, RowVerdict, build_checkers, check_row, ifbench


class RowSkipped(Exception):
    """
    A row that cannot be scored in this environment, although it is valid (its checker needs data that cannot be had
    offline): it is always skipped and listed with this message as reason, whatever `on_invalid` says.
    """


@dataclass(frozen=True)
class BenchmarkAdapter:
    r"""
    How one benchmark's rows are read, checked and reported.

    Parameters:
        name (`str`):
            The name recipes use (`benchmark_type`) and the metric takes (`benchmark`).
        columns (`tuple[str, ...]`):
            Columns every row must have; they make up the metric's references.
        scores (`dict[str, str]`):
            Score key (as the metric returns it) -> the name the model card shows.
        sample_file (`str`):
            File name of the benchmark's packaged offline sample in `instrl_trl.data`.
        validate (`Callable[[Mapping], None]`):
            Raises [`~instrl_trl.constraints.InvalidReferenceError`] for a row that cannot be checked reproducibly,
            or [`RowSkipped`] for a valid row that cannot be checked here; called before any model is loaded.
        check (`Callable[[Mapping, str], RowVerdict]`):
            The verdicts of a response on a row (raises `InvalidReferenceError` or `RowSkipped` like `validate`). A
            verdict has `strict` and `loose` (lists of `bool`, one per instruction) and `prompt_level_strict` and
            `prompt_level_loose`.
        hub_dataset (`str`, *optional*):
            The benchmark's Hub dataset id, evaluated when a recipe names the benchmark alone (`benchmark: ifbench`).
        dataset_names (`dict[str, str]`, *optional*, defaults to `{}`):
            Hub dataset id -> the name the card shows (e.g. `google/IFEval` -> `IFEval`).
    """

    name: str
    columns: tuple[str, ...]
    scores: dict[str, str]
    sample_file: str
    validate: Callable[[Mapping], None]
    check: Callable[[Mapping, str], RowVerdict]
    hub_dataset: str | None = None
    dataset_names: dict[str, str] = field(default_factory=dict)

    @property
    def sample_path(self) -> str:
        """The packaged sample's path (own prompts, Apache-2.0): offline runs and tests."""
        return str(files("instrl_trl.data").joinpath(self.sample_file))

    def dataset_name(self, dataset_id: str) -> str:
        """The name the card shows for `dataset_id`."""
        return self.dataset_names.get(dataset_id, dataset_id)

    def missing_columns(self, column_names: list[str]) -> list[str]:
        """The benchmark's columns absent from `column_names`."""
        return [column for column in self.columns if column not in column_names]

    def to_reference(self, row: Mapping[str, Any]) -> str:
        """The metric's reference for `row`: its columns as a JSON string."""
        return json.dumps({column: row[column] for column in self.columns})

    def parse_reference(self, reference: str) -> dict:
        """Reads a reference back; raises `InvalidReferenceError` when it is not a JSON object with the columns."""
        try:
            row = json.loads(reference)
        except (TypeError, json.JSONDecodeError) as error:
            raise InvalidReferenceError(f"the reference is not a JSON string: {error}") from error
        if not isinstance(row, dict):
            raise InvalidReferenceError(f"the reference is not a JSON object: {reference[:80]!r}")
        missing = [column for column in ("instruction_id_list", "kwargs") if column not in row]
        if missing:
            raise InvalidReferenceError(f"the reference has no {missing} (columns: {', '.join(self.columns)})")
        return row


def _validate_ifeval_row(row: Mapping) -> None:
    build_checkers(row["instruction_id_list"], row["kwargs"], prompt=row.get("prompt", ""))


def _check_ifeval_row(row: Mapping, response: str) -> RowVerdict:
    return check_row(response, row["instruction_id_list"], row["kwargs"], prompt=row.get("prompt", ""))


# lm-eval's names for the four scores (IFBench reports the same four), with the names the card shows
FOUR_SCORES = {
    "prompt_level_strict_acc": "Prompt-level strict accuracy",
    "inst_level_strict_acc": "Instruction-level strict accuracy",
    "prompt_level_loose_acc": "Prompt-level loose accuracy",
    "inst_level_loose_acc": "Instruction-level loose accuracy",
}

IFEVAL = BenchmarkAdapter(
    name="ifeval",
    columns=("key", "prompt", "instruction_id_list", "kwargs"),
    scores=FOUR_SCORES,
    sample_file="ifeval_sample.jsonl",
    validate=_validate_ifeval_row,
    check=_check_ifeval_row,
    hub_dataset="google/IFEval",
    dataset_names={"google/IFEval": "IFEval"},
)


def _validate_ifbench_row(row: Mapping) -> None:
    try:
        ifbench.build_checkers(row["instruction_id_list"], row["kwargs"])
    except ifbench.InvalidIFBenchRowError as error:
        raise InvalidReferenceError(str(error)) from error
    except ifbench.CheckerUnavailable as error:
        raise RowSkipped(str(error)) from error


def _check_ifbench_row(row: Mapping, response: str) -> ifbench.RowVerdict:
    # IFBench rows carry every argument name (unused ones null) and floats for counts: `check_row` takes them as they
    # are. Its `skipped` verdict (a checker's data is not available offline) becomes a skipped row.
    try:
        verdict = ifbench.check_row(response, row["instruction_id_list"], row["kwargs"])
    except ifbench.InvalidIFBenchRowError as error:
        raise InvalidReferenceError(str(error)) from error
    if verdict.skipped is not None:
        raise RowSkipped(verdict.skipped)
    return verdict


IFBENCH = BenchmarkAdapter(
    name="ifbench",
    columns=("key", "prompt", "instruction_id_list", "kwargs"),
    scores=FOUR_SCORES,  # IFBench's headline is prompt-level loose
    sample_file="ifbench_sample.jsonl",
    validate=_validate_ifbench_row,
    check=_check_ifbench_row,
    hub_dataset="allenai/IFBench_test",
    dataset_names={"allenai/IFBench_test": "IFBench"},
)

BENCHMARKS: dict[str, BenchmarkAdapter] = {IFEVAL.name: IFEVAL, IFBENCH.name: IFBENCH}


def get_benchmark(name: str) -> BenchmarkAdapter:
    """Returns the adapter named `name`; an unknown name raises a `ValueError` listing the valid ones."""
    if name not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark type {name!r}. Valid names: {', '.join(BENCHMARKS)}.")
    return BENCHMARKS[name]
