"""
Seed instructions: where they come from (one set of arguments, one loader) and the checks every stage runs: no
benchmark test prompt, and no seed that looks like a secret ([`~instrl_trl.hub.secrets.check_no_secrets`]), since
seeds are sent to LLMs and written to the dataset.
"""

from dataclasses import dataclass, field

from accelerate.logging import get_logger
from datasets import Dataset

from ..hub.secrets import check_no_secrets
from . import load_quickstart_seeds
from .benchmark_prompts import check_not_benchmark_prompts
from .loading import DatasetArguments, load_dataset_by_name


logger = get_logger(__name__)

# A seed this long is a document, not an instruction
LONG_SEED_WORDS = 2000


@dataclass
class SeedDataArguments(DatasetArguments):
    r"""
    Where the seed instructions come from, for the `train-policy` and `generate` stages: the fields of
    [`~instrl_trl.data.loading.DatasetArguments`], where an unset `dataset_name` means the ~200 quickstart seeds
    shipped with the package.
    """

    def load_seeds(self, column: str | None = None) -> Dataset:
        """The seeds; with `column`, refused when one looks like a secret (see [`load_seeds`])."""
        return load_seeds(self.dataset_name, self.dataset_config, self.dataset_split, column)


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


def load_seeds(
    dataset_name: str | None, dataset_config: str | None = None, split: str = "train", column: str | None = None
) -> Dataset:
    """
    `None` gives the embedded quickstart seeds; anything else is loaded by [`load_dataset_by_name`] (a local file or
    folder, or a Hub dataset id). With `column` (the instructions), a seed that looks like a token or key raises a
    `ValueError` naming its row, here, before a stage claims its output folder or sends any query.
    """
    seeds = (
        load_quickstart_seeds() if dataset_name is None else load_dataset_by_name(dataset_name, dataset_config, split)
    )
    if column is not None and column in seeds.column_names:
        check_no_secrets(seeds[column], column)
    return seeds


def warn_long_seeds(instructions: list[str], column: str, max_words: int = LONG_SEED_WORDS) -> list[int]:
    """
    Warns about the seeds longer than `max_words` words, which otherwise tend to vanish without a word: the policy
    sees only the first `max_state_length` tokens of a state, an LLM rewriter's prompt may pass its context length
    (a `400` that fails the query), and the rules engine's rewrites of them rarely pass review. Returns their indices.
    """
    long = [index for index, text in enumerate(instructions) if len(text.split()) > max_words]
    if long:
        longest = max(long, key=lambda index: len(instructions[index].split()))
        logger.warning(
            f"{len(long)} seeds in `{column}` have more than {max_words} words (the longest, row {longest}, has "
            f"{len(instructions[longest].split())}); they may yield no row: the policy reads only their beginning and "
            "an LLM's context may not hold them. Shorten or split them for rows from every seed."
        )
    return long


def prepare_seed_dataset(dataset: Dataset | None, column: str, min_rows: int = 1) -> Dataset:
    """
    Returns `dataset` without the rows whose `column` is empty or not a string (their count is logged). Raises a
    `ValueError` naming the fix when the dataset is missing, lacks `column`, has no usable row, or has fewer than
    `min_rows` (one generation batch: with fewer, training would run 0 steps), when a seed is a test prompt of a
    packaged benchmark sample ([`check_not_benchmark_prompts`]), and when a seed looks like a secret
    ([`check_no_secrets`]: its row is named, the secret never echoed).
    """
    if dataset is None:
        raise ValueError("`train_dataset` is required: pass a `datasets.Dataset` of seed instructions.")
    if column not in dataset.column_names:
        raise ValueError(
            f"The seed dataset has no column `{column}` (set by `instruction_column`); its columns are "
            f"{dataset.column_names}. Set `instruction_column` to the column holding the instructions."
        )
    check_no_secrets(dataset[column], column)  # before empty rows are dropped: the error names the rows as given
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
    check_not_benchmark_prompts(dataset[column], column)
    warn_long_seeds(dataset[column], column)
    if len(dataset) < min_rows:
        raise ValueError(
            f"The seed dataset has {len(dataset)} usable rows, fewer than `generation_batch_size` ({min_rows}); "
            "training would run 0 steps. Lower `per_device_train_batch_size` or `steps_per_generation`, or add seeds."
        )
    return dataset
