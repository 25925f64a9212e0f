"""The `evaluate` stage: its config and [`run_evaluate`]."""

from .evaluation_config import BenchmarkEvaluationConfig
from .runner import run_evaluate


__all__ = ["BenchmarkEvaluationConfig", "run_evaluate"]
