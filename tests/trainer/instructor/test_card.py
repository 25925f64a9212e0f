"""The instructor's card: its results under the labels every other report uses."""

from instrl_trl.backends.costs import ratio_label
from instrl_trl.backends.run_statistics import RunStatistics
from instrl_trl.operations import build_operation_library
from instrl_trl.trainer.cards import build_operation_card


def instructor_card(statistics: RunStatistics, usage_totals: dict) -> str:
    return build_operation_card(
        "instructor_card.md", "text-generation", model_name="instructor", operations=build_operation_library(),
        statistics=statistics, reward_weights={}, tags=[],
        queries_total=sum(int(usage["queries"]) for usage in usage_totals.values()), usage_totals=usage_totals,
        stop_reward=0.0, task_prompt="Evolve the instruction.",
    ).content  # fmt: skip


def test_the_card_gives_queries_per_accepted_evolution_under_its_label():
    operations = build_operation_library()
    statistics = RunStatistics([*operations.names, "stop"])
    statistics.add_episode(("deepening", "breadth"), num_accepted=2, stopped=True, reward=1.0, num_queries=4)
    statistics.add_episode(("deepening",), num_accepted=1, stopped=False, reward=0.5, num_queries=2)
    card = instructor_card(statistics, {"rewriter": {"queries": 3}, "reviewer": {"queries": 3}})
    assert "- LLM queries in total: 6 (rewriter: 3, reviewer: 3)" in card
    assert f"- {ratio_label('queries_per_evolution')}: 2.00\n" in card  # 6 queries, 3 evolutions

    # Nothing accepted: the ratio is `inf`, and the card leaves the line out rather than print it
    idle = RunStatistics([*operations.names, "stop"])
    idle.add_episode(("deepening",), num_accepted=0, stopped=False, reward=0.0, num_queries=1)
    assert ratio_label("queries_per_evolution") not in instructor_card(idle, {"rewriter": {"queries": 1}})
