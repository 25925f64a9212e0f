"""
Data shipped with the package: the quickstart seed instructions, which the quickstart trains on, and the held-out seed
instructions, kept for evaluation only (both Apache-2.0, written for this project).
"""

from importlib.resources import files

from datasets import Dataset, load_dataset


QUICKSTART_SEEDS = "quickstart_seeds.jsonl"
HELDOUT_SEEDS = "heldout_seeds.jsonl"


def quickstart_seeds_path() -> str:
    return str(files(__name__).joinpath(QUICKSTART_SEEDS))


def heldout_seeds_path() -> str:
    return str(files(__name__).joinpath(HELDOUT_SEEDS))


def load_quickstart_seeds() -> Dataset:
    """The ~200 quickstart seed instructions as a `Dataset` with an `instruction` column."""
    return load_dataset("json", data_files=quickstart_seeds_path(), split="train")


def load_heldout_seeds() -> Dataset:
    """
    The 150 held-out seed instructions as a `Dataset` with `instruction` and `category` columns (Dolly-15k's eight
    categories). They are disjoint from the quickstart seeds and in another voice: report on them, never train on them.
    """
    return load_dataset("json", data_files=heldout_seeds_path(), split="train")
