"""Several models side by side: the terminal table and the bar chart of their scores."""

import os

from ..hub.plots import pyplot
from .card import dataset_id


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


def plot_comparison(results: dict[str, dict], scores: dict[str, str], path: str) -> str:
    """Draws the benchmark's `scores` of every model as grouped bars into a PNG at `path`; returns `path`."""
    plt = pyplot()
    width = 0.8 / len(results)
    figure, axis = plt.subplots(figsize=(8, 4))
    for i, (model, values) in enumerate(results.items()):
        positions = [j + (i - (len(results) - 1) / 2) * width for j in range(len(scores))]
        axis.bar(positions, [values[score] for score in scores], width, label=_model_label(model))
    axis.set_xticks(range(len(scores)), [name.replace(" accuracy", "") for name in scores.values()])
    axis.set_ylim(0, 1)
    axis.set_ylabel("accuracy")
    benchmark = next(iter(results.values()))
    axis.set_title(f"{dataset_id(benchmark['benchmark'])} ({benchmark['benchmark_split']})")
    axis.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
