"""
TRL's private names, imported in this one place. They are not public API, so `pyproject.toml` pins TRL to a minor
range; if an upgrade moves them, this is the only file to change.
"""

from trl.trainer.base_config import _BaseConfig
from trl.trainer.base_trainer import _BaseTrainer
from trl.trainer.utils import RepeatSampler, disable_dropout_in_model, identity


__all__ = ["RepeatSampler", "_BaseConfig", "_BaseTrainer", "disable_dropout_in_model", "identity"]
