from .builder import GenerationSummary, generate_dataset, load_policy, run_generate
from .card import write_dataset_card
from .generation_config import DatasetGenerationConfig
from .policies import (
    POLICY_KINDS,
    EvolutionSetup,
    GenerationPolicy,
    load_generation_policy,
    policy_kind,
)
from .responses import ExpertUnavailableError
from .rows import COLUMN_DESCRIPTIONS, ROW_COLUMNS, ROW_SCHEMA, to_row


__all__ = [
    "COLUMN_DESCRIPTIONS",
    "POLICY_KINDS",
    "ROW_COLUMNS",
    "ROW_SCHEMA",
    "DatasetGenerationConfig",
    "EvolutionSetup",
    "ExpertUnavailableError",
    "GenerationPolicy",
    "GenerationSummary",
    "generate_dataset",
    "load_generation_policy",
    "load_policy",
    "policy_kind",
    "run_generate",
    "to_row",
    "write_dataset_card",
]
