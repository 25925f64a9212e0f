import doctest
import math
from pathlib import Path

from instrl_trl.backends import costs as costs_module
from instrl_trl.backends.costs import RATIO_LABELS, CostSummary, cost_per, rate, ratio_label
from instrl_trl.backends.run_statistics import RunStatistics


def test_one_empty_case_rule_per_kind_of_ratio():
    # A cost per nothing bought is infinite (sorts last); a share of nothing is undefined
    assert cost_per(10, 4) == 2.5 and cost_per(10, 0) == math.inf and cost_per(0, 0) == math.inf
    assert rate(1, 4) == 0.25 and math.isnan(rate(0, 0))
    empty = CostSummary(num_queries=10, num_evolutions=0, num_instructions=0, num_deep_instructions=0)
    assert all(value == math.inf for value in empty.ratios().values())
    assert math.isnan(empty.accepted_rate)
    # Training's counts follow the same rules
    assert RunStatistics(["a", "stop"], num_queries=10).costs().queries_per_evolution == math.inf


def test_ratios_by_hand_and_their_labels():
    summary = CostSummary(
        num_queries=19, num_evolutions=4, num_instructions=2, num_deep_instructions=1, num_rewrites=10,
        prompt_tokens={"rewriter": 100, "reviewer": 40}, completion_tokens={"rewriter": 30, "reviewer": 6},
    )  # fmt: skip
    assert summary.ratios() == {
        "queries_per_evolution": 4.75,
        "queries_per_instruction": 9.5,
        "queries_per_deep_instruction": 19.0,
        "tokens_per_instruction": 88.0,
        "tokens_per_deep_instruction": 176.0,
    }
    assert summary.accepted_rate == 0.4
    assert ratio_label("queries_per_deep_instruction", 4) == "LLM queries per instruction of 4+ evolutions"
    assert summary.card_ratios()["LLM queries per instruction of 3+ evolutions"] == 19.0
    assert summary.tokens_per_role() == {
        "rewriter": {"prompt": 100, "completion": 30},
        "reviewer": {"prompt": 40, "completion": 6},
    }
    # A card leaves out what has no denominator, and token lines when no token was counted
    no_tokens = CostSummary(num_queries=6, num_evolutions=3, num_instructions=1, num_deep_instructions=0)
    assert list(no_tokens.card_ratios()) == [
        ratio_label("queries_per_evolution"),
        ratio_label("queries_per_instruction"),
    ]
    assert set(RATIO_LABELS) == set(summary.ratios())


def test_docstring_examples():
    results = doctest.testmod(costs_module)
    assert results.attempted > 0 and results.failed == 0


def test_readme_quotes_the_ratios_under_their_labels():
    # The README's benchmark section and the cards name each ratio the same way
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in RATIO_LABELS:
        assert ratio_label(name) in " ".join(readme.split()), name
    # ... and never under an older name that meant another quantity (per accepted step, or per kept episode)
    assert "queries per accepted instruction" not in " ".join(readme.split())
