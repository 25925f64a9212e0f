"""The benchmark's rows: loaded, their columns checked, and every row's checkers built before any model is loaded."""

import logging

from datasets import Dataset

from ..constraints import InvalidReferenceError
from ..data.loading import load_dataset_by_name
from ..metrics.benchmarks import BenchmarkAdapter


logger = logging.getLogger(__name__)


def load_benchmark(
    adapter: BenchmarkAdapter,
    benchmark: str,
    config_name: str | None = None,
    split: str = "train",
    max_samples: int | None = None,
) -> Dataset:
    r"""
    Loads a benchmark and checks that it has the adapter's columns.

    Args:
        adapter ([`~instrl_trl.metrics.benchmarks.BenchmarkAdapter`]):
            The benchmark's type (columns, checks).
        benchmark (`str`):
            A Hub dataset id, a local file (`.jsonl`, `.json`, `.parquet`, `.csv`) or a `save_to_disk` folder.
        config_name (`str`, *optional*):
            Configuration name of the Hub dataset.
        split (`str`, *optional*, defaults to `"train"`):
            Split of the Hub dataset.
        max_samples (`int`, *optional*):
            Keep only the first `max_samples` rows.

    Returns:
        [`~datasets.Dataset`]: the rows, with at least the adapter's columns.

    Raises:
        `ValueError`: a column is missing; the message names it.
    """
    dataset = load_dataset_by_name(benchmark, config_name, split)
    missing = adapter.missing_columns(dataset.column_names)
    if missing:
        raise ValueError(
            f"The benchmark {benchmark!r} has no column {', '.join(repr(c) for c in missing)}; a {adapter.name} "
            f"benchmark has the columns {', '.join(adapter.columns)} (found: {', '.join(dataset.column_names)}). "
            "Convert it, or set `benchmark_type` to the benchmark's type."
        )
    if max_samples is not None and max_samples < dataset.num_rows:
        dataset = dataset.select(range(max_samples))
    return dataset


def check_benchmark_rows(adapter: BenchmarkAdapter, benchmark: Dataset, on_invalid: str = "skip") -> list[dict]:
    """
    Builds the checkers of every row before anything is generated: a row that cannot be scored raises with
    `on_invalid="raise"`, and is logged (then skipped when scoring) with `"skip"`. Returns the invalid rows' `key`
    and reason.
    """
    invalid = []
    for row in benchmark:
        try:
            adapter.validate(row)
        except InvalidReferenceError as error:
            if on_invalid == "raise":
                raise ValueError(
                    f"Benchmark row with key {row['key']!r} cannot be scored: {error}. Fix the row, or set "
                    '`on_invalid="skip"` to leave it out and list it under `skipped`.'
                ) from error
            invalid.append({"key": row["key"], "reason": str(error)})
    if invalid:
        logger.warning(
            f"{len(invalid)} benchmark rows cannot be scored and will be skipped (keys: "
            f"{', '.join(str(row['key']) for row in invalid)}); see `skipped` in the results."
        )
    return invalid
