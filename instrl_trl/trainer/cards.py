"""
The cards of both trainers' models (the PPO policy's `model_cards/policy_card.md`, the instructor's
`model_cards/instructor_card.md`), rendered by one function, and the policy's training curve.
"""

import os
from collections.abc import Callable

from huggingface_hub import ModelCard, ModelCardData

from ..backends.run_statistics import RunStatistics
from ..environment import STOP_ACTION
from ..hub.cards import render_model_card
from ..hub.plots import pyplot
from ..operations import OperationLibrary


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


def build_operation_card(
    template_name: str,
    pipeline_tag: str,
    *,
    model_name: str,
    operations: OperationLibrary,
    statistics: RunStatistics,
    reward_weights: dict[str, float],
    tags: list[str],
    queries_total: int,
    usage_totals: dict[str, dict[str, float]] | None = None,
    name_or_path: str | None = None,
    hub_model_id: str | None = None,
    dataset_name: str | None = None,
    **values,
) -> ModelCard:
    """
    Renders the card of a model that chooses operations (`policy_card.md` for the PPO policy, `instructor_card.md`
    for the instructor): what it does, its operations and how often it chose each, rewards, the episodes' totals,
    the LLM queries (in total and per role), the cost ratios of [`~instrl_trl.backends.costs.CostSummary`] under
    their labels (those without a denominator left out) and tokens per role from `usage_totals`. The base model is
    named only when `name_or_path` is a Hub id (a local folder would leak a path into a public card). `values` are
    the template's own variables.
    """
    base_model = name_or_path if name_or_path and not os.path.isdir(name_or_path) else None
    costs = statistics.costs(usage_totals)
    queries_per_role = {role: int(usage["queries"]) for role, usage in (usage_totals or {}).items()}
    return render_model_card(
        template_name,
        operation_card_data(pipeline_tag, base_model, dataset_name, tags),
        model_name=model_name,
        hub_model_id=hub_model_id,
        base_model=base_model,
        dataset_name=dataset_name,
        operations=operation_rows(operations, statistics.frequency),
        reward_weights=reward_weights,
        num_episodes=statistics.num_episodes or None,
        mean_reward=statistics.mean_episode_reward,
        accepted_rate=statistics.accepted_rate,
        queries_total=queries_total,
        queries_per_role={role: count for role, count in queries_per_role.items() if count},
        cost_ratios=costs.card_ratios(),
        tokens_per_role=costs.tokens_per_role(),
        **values,
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
