"""`evaluate` metrics in the package: each folder holds a module that `evaluate.load(<folder>)` reads offline."""

from pathlib import Path

from .benchmarks import BENCHMARKS, BenchmarkAdapter, get_benchmark


INSTRUCTION_FOLLOWING_PATH = str(Path(__file__).resolve().parent / "instruction_following")


def load_instruction_following(**load_kwargs):
    r"""
    Loads the packaged `instruction_following` metric with `evaluate.load`, from its folder (no Hub access needed).

    Args:
        **load_kwargs:
            Passed to `evaluate.load` (for example `experiment_id`, `keep_in_memory`).

    Returns:
        `evaluate.EvaluationModule`: the metric; see its `inputs_description` for `compute`'s arguments.
    """
    import evaluate

    return evaluate.load(INSTRUCTION_FOLLOWING_PATH, **load_kwargs)


__all__ = [
    "BENCHMARKS",
    "INSTRUCTION_FOLLOWING_PATH",
    "BenchmarkAdapter",
    "get_benchmark",
    "load_instruction_following",
]
