"""Loading seed instructions from the Hub, a local file or folder, or the embedded quickstart set."""

from datasets import Dataset

from ..data import load_quickstart_seeds
from ..data.loading import load_dataset_by_name


def load_seeds(dataset_name: str | None, dataset_config: str | None = None, split: str = "train") -> Dataset:
    """
    `None` gives the embedded quickstart seeds; anything else is loaded by [`load_dataset_by_name`] (a local file or
    folder, or a Hub dataset id).
    """
    if dataset_name is None:
        return load_quickstart_seeds()
    return load_dataset_by_name(dataset_name, dataset_config, split)
