"""Loading a dataset by name: a local file, a local folder, or a Hub id. Seeds, SFT data and benchmarks all use it."""

import glob
import os
from dataclasses import dataclass, field

from datasets import Dataset, load_dataset, load_from_disk


FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


@dataclass
class DatasetArguments:
    r"""
    Which dataset a stage reads, as [`load_dataset_by_name`] takes it; every stage's config inherits these fields.

    Parameters:
        dataset_name (`str`, *optional*):
            A Hub dataset id, a local file (`.jsonl`, `.json`, `.csv`, `.parquet`, `.txt`), a folder of parquet
            shards (e.g. the `data/` folder `instrl-trl generate` writes) or a folder saved with `save_to_disk`.
        dataset_config (`str`, *optional*):
            Configuration name of the Hub dataset.
        dataset_split (`str`, *optional*, defaults to `"train"`):
            Split of the Hub dataset (a local path is read as one split).
    """

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "A Hub dataset id, a local file, a folder of parquet shards or a save_to_disk folder."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Configuration name of the Hub dataset."})
    dataset_split: str = field(default="train", metadata={"help": "Split of the Hub dataset."})


def _parquet_files(folder: str) -> list[str]:
    """The folder's parquet shards, or those under its `data/` (the layout `instrl-trl generate` writes)."""
    return sorted(glob.glob(os.path.join(folder, "*.parquet"))) or sorted(
        glob.glob(os.path.join(folder, "data", "*.parquet"))
    )


def load_dataset_by_name(dataset_name: str, dataset_config: str | None = None, split: str = "train") -> Dataset:
    """
    Loads `dataset_name`:
    - an existing file, read by its extension (`.json`, `.jsonl`, `.csv`, `.parquet`, `.txt`);
    - a folder saved with `save_to_disk`, loaded back;
    - a folder of parquet shards (or holding them under `data/`), read as one split;
    - another local folder of data files, handed to [`~datasets.load_dataset`];
    - anything else, a Hub dataset id (`dataset_config` and `split` apply to it).

    A path that looks like a file but does not exist, an unsupported file type and a folder with no data file raise
    before anything is downloaded.
    """
    extension = os.path.splitext(dataset_name)[1].lower()
    if os.path.isfile(dataset_name):
        if extension not in FILE_BUILDERS:
            raise ValueError(
                f"`dataset_name` {dataset_name!r}: unsupported file type {extension!r}; use one of "
                f"{', '.join(FILE_BUILDERS)}."
            )
        return load_dataset(FILE_BUILDERS[extension], data_files=dataset_name, split="train")
    if extension in FILE_BUILDERS:
        raise FileNotFoundError(
            f"`dataset_name` {dataset_name!r} looks like a file but does not exist (relative paths are read from "
            f"{os.getcwd()}). Pass an existing file, a folder, or a Hub dataset id."
        )
    if os.path.isdir(dataset_name):
        if os.path.isfile(os.path.join(dataset_name, "dataset_info.json")):
            return load_from_disk(dataset_name)
        parquet_files = _parquet_files(dataset_name)
        if parquet_files:
            return load_dataset("parquet", data_files=parquet_files, split="train")
        if any(glob.glob(os.path.join(dataset_name, f"*{suffix}")) for suffix in FILE_BUILDERS):
            return load_dataset(dataset_name, split=split)
        raise ValueError(
            f"`dataset_name` is the local folder {dataset_name!r}, which holds no `*.parquet` file (nor "
            "`data/*.parquet`) and no other data file. Point it at the `data/` folder of an `instrl-trl generate` "
            "run, e.g. `data/quickstart-dataset/data`."
        )
    return load_dataset(dataset_name, dataset_config, split=split)
