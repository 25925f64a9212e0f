from .builder import GenerationSummary, generate_dataset, load_policy, run_generate
from .card import write_dataset_card
from .generation_config import DatasetGenerationConfig
from .responses import ExpertUnavailableError
from .rows import COLUMN_DESCRIPTIONS, ROW_COLUMNS, ROW_SCHEMA, to_row


__all__ = [
    "COLUMN_DESCRIPTIONS",
    "ROW_COLUMNS",
    "ROW_SCHEMA",
    "DatasetGenerationConfig",
    "ExpertUnavailableError",
    "GenerationSummary",
    "generate_dataset",
    "load_policy",
    "run_generate",
    "to_row",
    "write_dataset_card",
]
