"""`evaluate` metrics in the package: each folder holds a module that `evaluate.load(<folder>)` reads offline."""

from pathlib import Path

from .benchmarks import BENCHMARKS, IFBENCH, IFEVAL, BenchmarkAdapter, RowSkipped, get_benchmark


INSTRUCTION_FOLLOWING_PATH = str(Path(__file__).resolve().parent / "instruction_following")


def load_instruction_following(config_name: str = "ifeval", **load_kwargs):
    r"""
    Loads the packaged `instruction_following` metric with `evaluate.load`, from its folder (no Hub access needed).

    Args:
        config_name (`str`, *optional*, defaults to `"ifeval"`):
            The benchmark it scores: `"ifeval"` or `"ifbench"` (any name of `BENCHMARKS`).
        **load_kwargs:
            Passed to `evaluate.load` (for example `experiment_id`, `keep_in_memory`).

    Returns:
        `evaluate.EvaluationModule`: the metric; see its `inputs_description` for `compute`'s arguments.
    """
    import evaluate

    return evaluate.load(INSTRUCTION_FOLLOWING_PATH, config_name, **load_kwargs)


__all__ = [
    "BENCHMARKS",
    "IFBENCH",
    "IFEVAL",
    "INSTRUCTION_FOLLOWING_PATH",
    "BenchmarkAdapter",
    "RowSkipped",
    "get_benchmark",
    "load_instruction_following",
]
