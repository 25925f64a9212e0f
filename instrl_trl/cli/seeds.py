"""Loading seed instructions from the Hub, a local file or folder, or the embedded quickstart set."""

import os

from datasets import Dataset, load_dataset, load_from_disk


_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def load_seeds(dataset_name: str | None, dataset_config: str | None = None, split: str = "train") -> Dataset:
    """
    `None` gives the embedded quickstart seeds; an existing file is read by its extension; a folder saved with
    `save_to_disk` is loaded back; anything else is a Hub dataset id for [`~datasets.load_dataset`].
    """
    if dataset_name is None:
        from ..data import load_quickstart_seeds

        return load_quickstart_seeds()
    if os.path.isfile(dataset_name):
        extension = os.path.splitext(dataset_name)[1].lower()
        if extension not in _FILE_BUILDERS:
            raise ValueError(
                f"`dataset_name` {dataset_name!r}: unsupported file type {extension!r}; use one of "
                f"{', '.join(_FILE_BUILDERS)}."
            )
        return load_dataset(_FILE_BUILDERS[extension], data_files=dataset_name, split="train")
    if os.path.splitext(dataset_name)[1].lower() in _FILE_BUILDERS:
        raise FileNotFoundError(
            f"`dataset_name` {dataset_name!r} looks like a file but does not exist (relative paths are read from "
            f"{os.getcwd()}). Pass an existing file, a Hub dataset id, or leave it unset for the quickstart seeds."
        )
    if os.path.isdir(dataset_name) and os.path.isfile(os.path.join(dataset_name, "dataset_info.json")):
        return load_from_disk(dataset_name)
    return load_dataset(dataset_name, dataset_config, split=split)
