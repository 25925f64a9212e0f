"""Several models side by side: the terminal table and the bar chart of their scores."""

import os

from ..hub.plots import pyplot
from .distribution import overlap_warning
from .harness import model_label, settings_differences


COMPARISON_PLOT_FILE = "comparison.png"


def format_comparison_table(results: dict[str, dict], scores: dict[str, str]) -> str:
    """A markdown table of the benchmark's `scores`, one row per model (the terminal summary)."""
    header = ["Model", *scores, "scored", "skipped"]
    rows = [
        [
            model_label(model),
            *(f"{values[score]:.4f}" for score in scores),
            values["num_scored"],
            values["num_skipped"],
        ]
        for model, values in results.items()
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) + " |"
        for line in lines
    )


def print_distribution(benchmark: str, by_model: dict[str, dict]) -> None:
    """Prints, under a benchmark's table, each model's relation to its training data; loudly on an overlap."""
    for model, scores in by_model.items():
        distribution = scores.get("distribution")
        if distribution is None:
            continue
        print(f"{model_label(model)} on {benchmark}: {distribution['summary']}.")  # noqa: T201
        if distribution["relation"] == "overlapping":
            print(f"WARNING: {overlap_warning(model_label(model), benchmark, distribution)}")  # noqa: T201


def print_settings_differences(results: dict[str, dict]) -> None:
    """With several models, prints the settings in which their evaluations differ (none printed when alike)."""
    lines = settings_differences(results) if len(results) > 1 else []
    if lines:
        print("\nThese evaluations were not made alike; compare their scores with care:")  # noqa: T201
        print("\n".join(f"  {line}" for line in lines))  # noqa: T201


def plot_comparison(results: dict[str, dict[str, dict]], scores: dict[str, dict[str, str]], path: str) -> str:
    r"""
    Draws every model's scores as grouped bars, one panel per benchmark, into a PNG at `path`; returns `path`.

    Args:
        results (`dict[str, dict[str, dict]]`):
            Benchmark name -> model -> that benchmark's results.
        scores (`dict[str, dict[str, str]]`):
            Benchmark name -> its scores (score key -> the name shown).
        path (`str`):
            Where the PNG goes.
    """
    plt = pyplot()
    figure, axes = plt.subplots(1, len(results), figsize=(8 * len(results), 4), squeeze=False)
    for axis, (benchmark, by_model) in zip(axes[0], results.items(), strict=True):
        names = scores[benchmark]
        width = 0.8 / len(by_model)
        for i, (model, values) in enumerate(by_model.items()):
            positions = [j + (i - (len(by_model) - 1) / 2) * width for j in range(len(names))]
            axis.bar(positions, [values[score] for score in names], width, label=model_label(model))
        axis.set_xticks(range(len(names)), [name.replace(" accuracy", "") for name in names.values()])
        axis.set_ylim(0, 1)
        axis.set_ylabel("accuracy")
        axis.set_title(f"{benchmark} ({next(iter(by_model.values()))['benchmark_split']})")
        axis.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
