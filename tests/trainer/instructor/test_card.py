"""The instructor's card: its results under the labels every other report uses."""

from instrl_trl.backends.costs import ratio_label
from instrl_trl.operations import build_operation_library
from instrl_trl.tool_environment.statistics import EpisodeRecord, InstructorStatistics
from instrl_trl.trainer.instructor.card import build_instructor_card


def test_the_card_gives_queries_per_accepted_evolution_under_its_label():
    operations = build_operation_library()
    statistics = InstructorStatistics([*operations.names, "stop"])
    statistics.add(EpisodeRecord(("deepening", "breadth"), num_accepted=2, stopped=True, reward=1.0))
    statistics.add(EpisodeRecord(("deepening",), num_accepted=1, stopped=False, reward=0.5))
    card = build_instructor_card(model_name="instructor", operations=operations, statistics=statistics,
                                 queries={"rewriter": 3, "reviewer": 3}, reward_weights={}, stop_reward=0.0,
                                 tags=[]).content  # fmt: skip
    assert "- LLM queries in total: 6 (rewriter: 3, reviewer: 3)" in card
    assert f"- {ratio_label('queries_per_evolution')}: 2.00\n" in card  # 6 queries, 3 evolutions

    # Nothing accepted: the ratio is `inf`, and the card leaves the line out rather than print it
    idle = InstructorStatistics([*operations.names, "stop"])
    idle.add(EpisodeRecord(("deepening",), num_accepted=0, stopped=False, reward=0.0))
    card = build_instructor_card(model_name="instructor", operations=operations, statistics=idle,
                                 queries={"rewriter": 1}, reward_weights={}, stop_reward=0.0,
                                 tags=[]).content  # fmt: skip
    assert ratio_label("queries_per_evolution") not in card
