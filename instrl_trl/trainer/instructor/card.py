"""The instructor's model card, rendered from `model_cards/instructor_card.md`."""

from huggingface_hub import ModelCard, ModelCardData

from ...environment import STOP_ACTION
from ...hub.cards import render_model_card
from ...operations import OperationLibrary
from ...tool_environment import DEFAULT_TASK_PROMPT
from ...tool_environment.statistics import InstructorStatistics


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
    card_data = ModelCardData(
        base_model=base_model,
        library_name="transformers",
        pipeline_tag="text-generation",
        datasets=[dataset_name] if dataset_name else None,
        tags=tags,
    )
    rows = [
        {"name": name, "description": operation.description, "frequency": statistics.frequency(name)}
        for name, operation in operations.items()
    ]
    rows.append(
        {"name": STOP_ACTION, "description": "End the episode.", "frequency": statistics.frequency(STOP_ACTION)}
    )
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
    )
