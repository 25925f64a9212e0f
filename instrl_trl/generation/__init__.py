from .builder import ROW_SCHEMA, GenerationSummary, generate_dataset, load_policy
from .card import write_dataset_card
from .generation_config import DatasetGenerationConfig
from .responses import ExpertUnavailableError


__all__ = [
    "ROW_SCHEMA",
    "DatasetGenerationConfig",
    "ExpertUnavailableError",
    "GenerationSummary",
    "generate_dataset",
    "load_policy",
    "write_dataset_card",
]
