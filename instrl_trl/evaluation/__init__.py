"""
The `evaluate` stage's parts: its config, benchmark rows, answers, results and card (the stage itself:
`instrl_trl.stages.evaluate`).
"""

from .evaluation_config import BenchmarkEvaluationConfig


__all__ = ["BenchmarkEvaluationConfig"]
