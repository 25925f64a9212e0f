"""
Render the Jinja templates of `model_cards/` into Hub cards, as TRL's `generate_model_card` does
(`trl/trainer/utils.py`): `ModelCard.from_template(card_data, template_path=..., **values)`.
"""

import copy
import importlib.resources
import logging
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

from .secrets import find_secret


logger = logging.getLogger(__name__)

# Where the templates live once installed (`model_cards/` mapped to this package in a wheel, see `pyproject.toml`)...
TEMPLATES_PACKAGE = "instrl_trl.model_cards"
# ... and in a source checkout or a default (non-strict) editable install: `<repo>/model_cards/`.
REPO_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "model_cards"

# Template variable -> distribution name, for the card's "Framework versions" list.
_FRAMEWORKS = {
    "instrl_trl_version": "instrl-trl",
    "trl_version": "trl",
    "transformers_version": "transformers",
    "pytorch_version": "torch",
    "datasets_version": "datasets",
    "tokenizers_version": "tokenizers",
}


def template_path(name: str) -> Path:
    """
    Returns the path of the card template `name` (e.g. `"policy_card.md"`).

    The installed `instrl_trl.model_cards` package is searched first (present in wheels and strict editable installs),
    then the repository's `model_cards/` folder (source checkouts and the default `pip install -e .`).

    Raises:
        `FileNotFoundError`: If no template of that name exists in either place; the message lists both.
    """
    searched = []
    try:
        resource = importlib.resources.files(TEMPLATES_PACKAGE).joinpath(name)
    except (ModuleNotFoundError, TypeError):
        searched.append(f"package {TEMPLATES_PACKAGE!r} (not installed)")
    else:
        if resource.is_file():
            return Path(str(resource))
        searched.append(f"package {TEMPLATES_PACKAGE!r}")
    candidate = REPO_TEMPLATES_DIR / name
    if candidate.is_file():
        return candidate
    searched.append(f"folder {REPO_TEMPLATES_DIR}")
    raise FileNotFoundError(f"Card template {name!r} not found. Searched: {'; '.join(searched)}.")


def framework_versions() -> dict[str, str]:
    """
    Returns the installed versions of the libraries listed in every card, keyed by their template variable
    (`instrl_trl_version`, `trl_version`, `transformers_version`, `pytorch_version`, `datasets_version`,
    `tokenizers_version`). A library that is not installed reads `"not installed"`.
    """
    versions = {}
    for variable, distribution in _FRAMEWORKS.items():
        try:
            versions[variable] = version(distribution)
        except PackageNotFoundError:
            versions[variable] = "not installed"
    return versions


def _is_local_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and (os.path.isabs(value) or os.path.isdir(value))


def render_dataset_card(template_name: str, card_data: DatasetCardData, **values: Any) -> DatasetCard:
    """Like [`render_model_card`], for a [`~huggingface_hub.DatasetCard`]."""
    return render_model_card(template_name, card_data, card_class=DatasetCard, **values)


def render_model_card(
    template_name: str, card_data: ModelCardData, card_class: type[ModelCard] = ModelCard, **values: Any
) -> ModelCard:
    """
    Renders the template `template_name` from `model_cards/` into a [`~huggingface_hub.ModelCard`].

    Args:
        template_name (`str`):
            File name of the template, e.g. `"policy_card.md"`.
        card_data ([`~huggingface_hub.ModelCardData`]):
            Metadata for the YAML front matter (`{{ card_data }}`). Its fields are also template variables.
        **values:
            Template variables. The framework versions ([`framework_versions`]) are filled in unless given.

    Returns:
        [`~huggingface_hub.ModelCard`]: The rendered card.

    A card never carries a local path: a top-level string value, or `card_data.base_model`, that is an absolute path
    or an existing directory is dropped (set to `None`), as TRL does for a `base_model` loaded from disk.

    Raises:
        `ValueError`: If the rendered card contains something that looks like a token or key
            ([`~instrl_trl.hub.secrets.find_secret`]).
    """
    values = {**framework_versions(), **values}
    for key, value in values.items():
        if _is_local_path(value):
            logger.info("Card value %r is a local path; leaving it out of the card.", key)
            values[key] = None
    if _is_local_path(getattr(card_data, "base_model", None)):
        logger.info("`card_data.base_model` is a local path; leaving it out of the card.")
        card_data = copy.deepcopy(card_data)  # the caller's object stays as it was
        card_data.base_model = None
    card = card_class.from_template(card_data, template_path=str(template_path(template_name)), **values)
    kind = find_secret(card.content)
    if kind is not None:
        raise ValueError(
            f"The rendered card {template_name!r} contains what looks like a secret ({kind}); remove it from the "
            "card values before pushing."
        )
    return card
