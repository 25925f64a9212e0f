"""The instructor's model card, rendered from `model_cards/instructor_card.md`."""

from huggingface_hub import ModelCard

from ...backends.costs import CostSummary
from ...hub.cards import render_model_card
from ...operations import OperationLibrary
from ...tool_environment import DEFAULT_TASK_PROMPT
from ...tool_environment.statistics import InstructorStatistics
from ..policy_card import operation_card_data, operation_rows


def build_instructor_card(
    *,
    model_name: str,
    operations: OperationLibrary,
    statistics: InstructorStatistics,
    queries: dict[str, int],
    reward_weights: dict[str, float],
    stop_reward: float,
    tags: list[str],
    task_prompt: str = DEFAULT_TASK_PROMPT,
    base_model: str | None = None,
    hub_model_id: str | None = None,
    dataset_name: str | None = None,
) -> ModelCard:
    """Renders the card: what the instructor does, its tools and how often it called them, rewards and queries."""
    card_data = operation_card_data("text-generation", base_model, dataset_name, tags)
    rows = operation_rows(operations, statistics.frequency)
    # Only evolutions are counted during training (no kept or deep instructions): one ratio, under its one label
    costs = CostSummary(sum(queries.values()), statistics.num_accepted, num_instructions=0, num_deep_instructions=0)
    return render_model_card(
        "instructor_card.md",
        card_data,
        model_name=model_name,
        hub_model_id=hub_model_id,
        base_model=base_model,
        dataset_name=dataset_name,
        operations=rows,
        task_prompt=task_prompt,
        reward_weights=reward_weights,
        stop_reward=stop_reward,
        num_episodes=statistics.num_episodes or None,
        mean_reward=statistics.mean_reward,
        accepted_rate=statistics.accepted_rate,
        queries_total=sum(queries.values()),
        queries_per_role={role: count for role, count in queries.items() if count},
        cost_ratios=costs.card_ratios(["queries_per_evolution"]),
    )
