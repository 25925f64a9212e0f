"""
The train/test split of constraint ids: which ids a dataset's rows carry (for the dataset and model cards), and how a
benchmark's ids relate to the training data's (for `evaluate`): in-distribution, out-of-distribution, or overlapping
(the training data carries a benchmark's *test* constraints, which contaminates it).
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .families import TEST_CONSTRAINT_FAMILIES, family_of


# The cards' metadata key under which instrl-trl records the constraint ids of the training data
CARD_METADATA_KEY = "instrl_trl"
RELATIONS = ("in-distribution", "out-of-distribution", "overlapping", "unknown")
OUT_OF_DISTRIBUTION = "out-of-distribution: no shared constraint ids"


def constraint_id_counts(rows: Iterable[Iterable[str | Mapping[str, Any]] | None]) -> dict[str, int]:
    r"""
    How many rows carry each constraint id (a row counts once per id), most frequent first.

    Args:
        rows (`Iterable`):
            Per row, its constraints: ids, or dicts with an `instruction_id` (the dataset's `constraints` column).
    """
    counts = Counter()
    for constraints in rows:
        ids = {c["instruction_id"] if isinstance(c, Mapping) else c for c in constraints or ()}
        counts.update(ids)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def summarize_constraint_ids(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """
    The cards' record of a dataset's constraints: `constraint_ids` (id -> rows) and `constraint_families` (family ->
    rows carrying one of its ids, counted per id; `other` for an id in no registry).
    """
    families = Counter()
    for instruction_id, count in counts.items():
        families[family_of(instruction_id) or "other"] += count
    return {"constraint_ids": dict(counts), "constraint_families": dict(families.most_common())}


def compare_constraint_ids(benchmark_ids: Iterable[str], training_ids: Iterable[str] | None) -> dict[str, Any]:
    r"""
    How a benchmark's constraint ids relate to those of the training data.

    Args:
        benchmark_ids (`Iterable[str]`):
            The ids of the benchmark's rows.
        training_ids (`Iterable[str]` or `None`):
            The ids the training data carries; `None` when not recorded.

    Returns:
        `dict`: `relation` (one of [`RELATIONS`]), `shared_ids` (sorted) and `summary`, a sentence for the results
        and the card:

        - `out-of-distribution`: no shared id;
        - `overlapping`: the training data carries test constraints of the benchmark (of a family in
          [`TEST_CONSTRAINT_FAMILIES`]): its scores are not out-of-distribution, the run should warn;
        - `in-distribution`: the shared ids are training constraints, IFEval's or IFTrain's (IFEval's in training and
          in evaluation is the TeaMs-RL paper's set-up; IFBench after `[ifeval, iftrain]` training shares no id);
        - `unknown`: the training data's ids are not recorded.

    Example:

    ```python
    >>> compare_constraint_ids(["count:numbers"], ["punctuation:no_comma"])["summary"]
    'out-of-distribution: no shared constraint ids'
    >>> compare_constraint_ids(["count:numbers"], ["count:numbers"])["relation"]
    'overlapping'

    ```
    """
    benchmark = set(benchmark_ids)
    if training_ids is None:
        return {
            "relation": "unknown",
            "shared_ids": [],
            "summary": "unknown: the training data's constraint ids are not recorded (no instrl-trl model card); "
            "pass `train_dataset` to compare",
        }
    shared = sorted(benchmark & set(training_ids))
    if not shared:
        return {"relation": "out-of-distribution", "shared_ids": [], "summary": OUT_OF_DISTRIBUTION}
    test_ids = [instruction_id for instruction_id in shared if family_of(instruction_id) in TEST_CONSTRAINT_FAMILIES]
    if test_ids:
        return {
            "relation": "overlapping",
            "shared_ids": shared,
            "summary": f"overlapping: the training data carries {len(test_ids)} of this benchmark's test constraint "
            f"ids ({', '.join(test_ids)}); its scores are not out-of-distribution",
        }
    summary = f"in-distribution: {len(shared)} of the benchmark's {len(benchmark)} constraint ids are training ids"
    if all(family_of(instruction_id) == "ifeval" for instruction_id in shared):
        summary += " (IFEval constraints in training and in evaluation: the TeaMs-RL paper's set-up)"
    return {"relation": "in-distribution", "shared_ids": shared, "summary": summary}
