"""The operation policy's model card, rendered from `model_cards/policy_card.md`."""

import math
import os
from collections.abc import Callable

from huggingface_hub import ModelCard, ModelCardData

from ..environment import STOP_ACTION, format_state
from ..hub.cards import render_model_card
from ..hub.plots import pyplot
from ..operations import OperationLibrary
from .run_statistics import RunStatistics


def operation_card_data(
    pipeline_tag: str, base_model: str | None, dataset_name: str | None, tags: list[str]
) -> ModelCardData:
    """The card metadata of a model that chooses operations (the PPO policy, the instructor)."""
    return ModelCardData(
        base_model=base_model,
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        datasets=[dataset_name] if dataset_name else None,
        tags=tags,
    )


def operation_rows(operations: OperationLibrary, frequency: Callable[[str], float]) -> list[dict]:
    """The card's operation table: each operation (and `stop`) with its description and how often it was chosen."""
    rows = [
        {"name": name, "description": operation.description, "frequency": frequency(name)}
        for name, operation in operations.items()
    ]
    rows.append({"name": STOP_ACTION, "description": "End the episode.", "frequency": frequency(STOP_ACTION)})
    return rows


def build_policy_card(
    *,
    model_name: str,
    operations: OperationLibrary,
    statistics: RunStatistics,
    reward_weights: dict[str, float],
    tags: list[str],
    name_or_path: str | None = None,
    hub_model_id: str | None = None,
    dataset_name: str | None = None,
    training_curve: str | None = None,
    usage_totals: dict[str, dict[str, float]] | None = None,
) -> ModelCard:
    """
    Renders the card: what the policy does, its operations and their frequency, rewards, query totals and the cost
    ratios of [`~instrl_trl.backends.costs.CostSummary`] under their labels (those without a denominator left out),
    and tokens per role from `usage_totals`. The base model is named only when `name_or_path` is a Hub id (a local
    folder would leak a path into a public card).
    """
    base_model = name_or_path if name_or_path and not os.path.isdir(name_or_path) else None
    card_data = operation_card_data("text-classification", base_model, dataset_name, tags)
    rows = operation_rows(operations, statistics.frequency)
    costs = statistics.costs(usage_totals)
    return render_model_card(
        "policy_card.md",
        card_data,
        model_name=model_name,
        hub_model_id=hub_model_id,
        base_model=base_model,
        dataset_name=dataset_name,
        operations=rows,
        reward_weights=reward_weights,
        num_episodes=statistics.num_episodes or None,
        mean_reward=statistics.mean_episode_reward,
        accepted_rate=costs.accepted_rate if math.isfinite(costs.accepted_rate) else None,
        queries_total=statistics.num_queries,
        cost_ratios=costs.card_ratios(),
        tokens_per_role=costs.tokens_per_role(),
        example_state=format_state("Describe a city you would like to visit.", []),
        training_curve=training_curve,
    )


TRAINING_CURVE_FILE = "training_curve.png"


def plot_training_curve(log_history: list[dict], path: str) -> bool:
    """Plots mean episode reward and accepted rate against the step; returns `False` when nothing was logged."""
    points = [
        (log["step"], log["episode/reward"], log.get("accepted_rate"))
        for log in log_history
        if "episode/reward" in log
    ]
    if not points:
        return False
    plt = pyplot()

    steps, rewards, accepted = zip(*points, strict=True)
    figure, reward_axis = plt.subplots(figsize=(6, 3))
    reward_axis.plot(steps, rewards, color="#4c72b0", label="episode reward")
    reward_axis.set_xlabel("step")
    reward_axis.set_ylabel("mean episode reward")
    rate_axis = reward_axis.twinx()
    rate_axis.plot(steps, accepted, color="#dd8452", label="accepted rate")
    rate_axis.set_ylabel("accepted rate")
    figure.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
