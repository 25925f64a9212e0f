"""Seed instructions: where they come from (one set of arguments, one loader) and the check every stage runs."""

from dataclasses import dataclass, field

from accelerate.logging import get_logger
from datasets import Dataset

from . import load_quickstart_seeds
from .loading import DatasetArguments, load_dataset_by_name


logger = get_logger(__name__)


@dataclass
class SeedDataArguments(DatasetArguments):
    r"""
    Where the seed instructions come from, for the `train-policy` and `generate` stages: the fields of
    [`~instrl_trl.data.loading.DatasetArguments`], where an unset `dataset_name` means the ~200 quickstart seeds
    shipped with the package.
    """

    def load_seeds(self) -> Dataset:
        return load_seeds(self.dataset_name, self.dataset_config, self.dataset_split)


@dataclass
class SeedColumnArguments:
    r"""
    Which column of the seed dataset holds the instructions; shared by the trainer's and the `generate` configs.

    Parameters:
        instruction_column (`str`, *optional*, defaults to `"instruction"`):
            Column of the seed dataset that holds the seed instructions.
    """

    instruction_column: str = field(
        default="instruction", metadata={"help": "Column of the seed dataset that holds the seed instructions."}
    )


def load_seeds(dataset_name: str | None, dataset_config: str | None = None, split: str = "train") -> Dataset:
    """
    `None` gives the embedded quickstart seeds; anything else is loaded by [`load_dataset_by_name`] (a local file or
    folder, or a Hub dataset id).
    """
    if dataset_name is None:
        return load_quickstart_seeds()
    return load_dataset_by_name(dataset_name, dataset_config, split)


def prepare_seed_dataset(dataset: Dataset | None, column: str, min_rows: int = 1) -> Dataset:
    """
    Returns `dataset` without the rows whose `column` is empty or not a string (their count is logged). Raises a
    `ValueError` naming the fix when the dataset is missing, lacks `column`, has no usable row, or has fewer than
    `min_rows` (one generation batch: with fewer, training would run 0 steps).
    """
    if dataset is None:
        raise ValueError("`train_dataset` is required: pass a `datasets.Dataset` of seed instructions.")
    if column not in dataset.column_names:
        raise ValueError(
            f"The seed dataset has no column `{column}` (set by `instruction_column`); its columns are "
            f"{dataset.column_names}. Set `instruction_column` to the column holding the instructions."
        )
    kept = [i for i, value in enumerate(dataset[column]) if isinstance(value, str) and value.strip()]
    if not kept:
        raise ValueError(
            f"The seed dataset has no usable instruction in column `{column}` ({len(dataset)} rows, all empty or not "
            "strings). Pass a dataset with at least one non-empty string instruction."
        )
    num_skipped = len(dataset) - len(kept)
    if num_skipped:
        logger.warning(f"Skipped {num_skipped} seed rows whose `{column}` is empty or not a string.")
        dataset = dataset.select(kept)
    if len(dataset) < min_rows:
        raise ValueError(
            f"The seed dataset has {len(dataset)} usable rows, fewer than `generation_batch_size` ({min_rows}); "
            "training would run 0 steps. Lower `per_device_train_batch_size` or `steps_per_generation`, or add seeds."
        )
    return dataset
