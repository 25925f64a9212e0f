"""
The benchmarks' rows: each `benchmark` entry resolved to an adapter and a dataset ([`parse_benchmark`]), loaded, its
columns checked, and every row's checkers built before any model is loaded.
"""

import logging
import os
from dataclasses import dataclass

from datasets import Dataset

from ..constraints import InvalidReferenceError
from ..data.loading import load_dataset_by_name
from ..metrics.benchmarks import BENCHMARKS, BenchmarkAdapter, RowSkipped


logger = logging.getLogger(__name__)

SAMPLE = "sample"


def dataset_id(benchmark: str) -> str:
    """The benchmark's name as a card shows it: a Hub id, or a local file or folder's name (never a path)."""
    if os.path.exists(benchmark):
        return os.path.splitext(os.path.basename(os.path.normpath(benchmark)))[0]
    return benchmark


@dataclass(frozen=True)
class BenchmarkSpec:
    r"""
    One benchmark of an evaluation, resolved from a `benchmark` entry.

    Parameters:
        name (`str`):
            Its name in `eval_results.json` and on the card: the Hub id or the local file's name.
        benchmark_type (`str`):
            The adapter of `instrl_trl.metrics.benchmarks.BENCHMARKS` that reads and scores it.
        dataset (`str`):
            The Hub dataset id, local file or folder loaded.
    """

    name: str
    benchmark_type: str
    dataset: str

    @property
    def adapter(self) -> BenchmarkAdapter:
        return BENCHMARKS[self.benchmark_type]


def parse_benchmark(entry: str, default_type: str = "ifeval") -> BenchmarkSpec:
    r"""
    Resolves one `benchmark` entry (the adapters are looked up when called, so a newly registered one is known).

    Args:
        entry (`str`):
            - a registered benchmark name (`ifeval`, `ifbench`): its Hub dataset (`google/IFEval`,
              `allenai/IFBench_test`);
            - `NAME:sample`: its packaged offline sample (e.g. `ifbench:sample`);
            - `NAME:DATASET`: a Hub id, local file or folder in that benchmark's schema (`ifbench:my_rows.jsonl`);
            - a Hub id, local file or folder alone: of the benchmark whose Hub dataset it is, else `default_type`.
        default_type (`str`, *optional*, defaults to `"ifeval"`):
            The type of a dataset given alone (the `benchmark_type` field).

    Returns:
        [`BenchmarkSpec`]: the benchmark's name, type and dataset.

    Example:

    ```python
    >>> parse_benchmark("ifbench")
    BenchmarkSpec(name='allenai/IFBench_test', benchmark_type='ifbench', dataset='allenai/IFBench_test')
    >>> parse_benchmark("ifeval:org/my-ifeval-copy").benchmark_type
    'ifeval'

    ```
    """
    prefix, colon, dataset = entry.partition(":")
    if colon and prefix in BENCHMARKS:
        adapter = BENCHMARKS[prefix]
        if not dataset:
            raise ValueError(f"`benchmark` entry {entry!r} names no dataset: write `{prefix}:DATASET` or `{prefix}`.")
        dataset = adapter.sample_path if dataset == SAMPLE else dataset
    elif entry in BENCHMARKS:
        adapter = BENCHMARKS[entry]
        if adapter.hub_dataset is None:
            raise ValueError(
                f"`benchmark` entry {entry!r}: the {entry} benchmark has no Hub dataset; write `{entry}:DATASET` "
                f"or `{entry}:{SAMPLE}`."
            )
        dataset = adapter.hub_dataset
    else:
        if default_type not in BENCHMARKS:
            raise ValueError(f"`benchmark_type` must be one of {tuple(BENCHMARKS)}, got {default_type!r}.")
        known = [a for a in BENCHMARKS.values() if entry == a.hub_dataset or entry in a.dataset_names]
        adapter, dataset = (known[0] if known else BENCHMARKS[default_type]), entry
    return BenchmarkSpec(name=dataset_id(dataset), benchmark_type=adapter.name, dataset=dataset)


def parse_benchmarks(entries: list[str], default_type: str = "ifeval") -> list[BenchmarkSpec]:
    """Resolves every `benchmark` entry ([`parse_benchmark`]); two entries with one name raise."""
    specs = [parse_benchmark(entry, default_type) for entry in entries]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"`benchmark` names {', '.join(map(repr, duplicates))} twice ({entries}): each benchmark is one entry."
        )
    return specs


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
    `on_invalid="raise"`, and is logged (then skipped when scoring) with `"skip"`; a valid row whose checker cannot
    run here is logged and skipped either way. Returns the `key` and reason of every row that will be skipped.
    """
    invalid = []
    for row in benchmark:
        try:
            adapter.validate(row)
        except RowSkipped as error:
            invalid.append({"key": row["key"], "reason": str(error)})
        except InvalidReferenceError as error:
            if on_invalid == "raise":
                raise ValueError(
                    f"Benchmark row with key {row['key']!r} cannot be scored: {error}. Fix the row, or set "
                    '`on_invalid="skip"` to leave it out and list it under `skipped`.'
                ) from error
            invalid.append({"key": row["key"], "reason": str(error)})
    if invalid:
        logger.warning(
            f"{len(invalid)} {adapter.name} rows cannot be scored and will be skipped (keys: "
            f"{', '.join(str(row['key']) for row in invalid)}); see `skipped` in the results."
        )
    return invalid
