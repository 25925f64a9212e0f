"""Several models side by side: the terminal table and the bar chart of their scores."""

import os

from ..hub.plots import pyplot


COMPARISON_PLOT_FILE = "comparison.png"


def _model_label(model: str) -> str:
    return os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model


def format_comparison_table(results: dict[str, dict], scores: dict[str, str]) -> str:
    """A markdown table of the benchmark's `scores`, one row per model (the terminal summary)."""
    header = ["Model", *scores, "scored", "skipped"]
    rows = [
        [
            _model_label(model),
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
            axis.bar(positions, [values[score] for score in names], width, label=_model_label(model))
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
