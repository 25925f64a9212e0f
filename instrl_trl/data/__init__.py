"""Data shipped with the package: the quickstart seed instructions (Apache-2.0, written for this project)."""

from importlib.resources import files

from datasets import Dataset, load_dataset


QUICKSTART_SEEDS = "quickstart_seeds.jsonl"


def quickstart_seeds_path() -> str:
    return str(files(__name__).joinpath(QUICKSTART_SEEDS))


def load_quickstart_seeds() -> Dataset:
    """The ~200 quickstart seed instructions as a `Dataset` with an `instruction` column."""
    return load_dataset("json", data_files=quickstart_seeds_path(), split="train")
