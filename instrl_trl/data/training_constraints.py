"""
The constraint ids a training dataset carries, read from its rows (the `constraints` column `instrl-trl generate`
writes) or, when its rows have none, from its card's metadata. The SFT card carries them on, and `evaluate` compares
them with a benchmark's.
"""

import logging
import os

from huggingface_hub import DatasetCard

from ..constraints.split import CARD_METADATA_KEY, constraint_id_counts, summarize_constraint_ids
from .loading import load_dataset_by_name


logger = logging.getLogger(__name__)

CONSTRAINTS_COLUMN = "constraints"


def find_dataset_card(dataset_name: str) -> DatasetCard | None:
    r"""
    The card of a dataset: a Hub dataset's, or for a local path the `README.md` of the folder (or, for a `data/` folder
    of shards or a file in it, of its parent). `None` when there is none or the Hub cannot be reached.
    """
    if os.path.exists(dataset_name):
        folder = dataset_name if os.path.isdir(dataset_name) else os.path.dirname(dataset_name)
        candidates = [os.path.join(folder, "README.md"), os.path.join(os.path.dirname(folder), "README.md")]
        card_path = next((path for path in candidates if os.path.isfile(path)), None)
        return DatasetCard.load(card_path) if card_path else None
    try:
        return DatasetCard.load(dataset_name)
    except Exception as error:  # noqa: BLE001 - a missing or unreachable card only leaves what it says out
        logger.info(f"No dataset card for {dataset_name} ({type(error).__name__}).")
        return None


def read_training_constraints(
    dataset_name: str, dataset_config: str | None = None, split: str = "train"
) -> dict[str, dict[str, int]] | None:
    r"""
    The constraint ids of a training dataset, as the cards record them.

    Args:
        dataset_name (`str`):
            A Hub dataset id or a local path ([`~instrl_trl.data.loading.load_dataset_by_name`]).
        dataset_config (`str`, *optional*):
            Configuration name of the Hub dataset.
        split (`str`, *optional*, defaults to `"train"`):
            Split of the Hub dataset.

    Returns:
        `dict` or `None`: `constraint_ids` (id -> rows carrying it) and `constraint_families` (see
        [`~instrl_trl.constraints.split.summarize_constraint_ids`]), from the rows' `constraints` column, else from the
        card's `instrl_trl` metadata; `None` when neither records them.
    """
    dataset = load_dataset_by_name(dataset_name, dataset_config, split)
    if CONSTRAINTS_COLUMN in dataset.column_names:
        return summarize_constraint_ids(constraint_id_counts(dataset[CONSTRAINTS_COLUMN]))
    card = find_dataset_card(dataset_name)
    return constraints_from_card_data(card.data.to_dict() if card is not None else {})


def constraints_from_card_data(metadata: dict) -> dict[str, dict[str, int]] | None:
    """The constraint ids a card's metadata records (under `instrl_trl`), or `None` when it records none."""
    recorded = (metadata or {}).get(CARD_METADATA_KEY) or {}
    counts = recorded.get("constraint_ids")
    return summarize_constraint_ids(counts) if isinstance(counts, dict) else None
