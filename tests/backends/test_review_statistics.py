import json

import pytest

from instrl_trl.backends.accounting import write_queries_file
from instrl_trl.backends.base import Review
from instrl_trl.backends.review_statistics import ReviewStatistics


def reviews(*probabilities: float | None, threshold: float = 0.5) -> list[Review]:
    return [Review(False, "", None) if p is None else Review(p >= threshold, "", probability=p) for p in probabilities]


def test_sums_and_what_they_say():
    statistics = ReviewStatistics()
    statistics.add(reviews(0.9, None, 0.2, 0.7), references=reviews(0.0, 0.0, 0.0, 1.0))
    assert (statistics.reviews, statistics.failed, statistics.scored, statistics.gains) == (4, 1, 3, 2)
    assert (statistics.compared, statistics.agreed) == (3, 2)  # 0.9 disagrees with its reference, 0.2 and 0.7 agree
    assert statistics.failed_share == 0.25
    assert statistics.p_gain_mean == pytest.approx(0.6)
    assert statistics.p_gain_std == pytest.approx(((0.3**2 + 0.4**2 + 0.1**2) / 3) ** 0.5)
    assert statistics.agreement == pytest.approx(2 / 3)
    assert statistics.metrics() == {
        "reviewer/failed_share": 0.25,
        "reviewer/p_gain_mean": pytest.approx(0.6),
        "reviewer/p_gain_std": pytest.approx(statistics.p_gain_std),
        "reviewer/agreement": pytest.approx(2 / 3),
    }


def test_nothing_measured_is_left_out_not_zero():
    empty = ReviewStatistics()
    assert empty.metrics() == {} and empty.summary()["p_gain_mean"] is None
    only_failures = ReviewStatistics()
    only_failures.add(reviews(None, None))
    assert only_failures.metrics() == {"reviewer/failed_share": 1.0}


def test_a_window_is_the_difference_of_two_snapshots():
    statistics = ReviewStatistics()
    statistics.add(reviews(0.1, 0.9))
    snapshot = ReviewStatistics.from_list(statistics.to_list())
    statistics.add(reviews(0.5, 0.5, None))
    window = statistics - snapshot
    assert (window.reviews, window.failed, window.scored) == (3, 1, 2)
    assert window.p_gain_mean == pytest.approx(0.5) and window.p_gain_std == pytest.approx(0.0, abs=1e-7)
    assert (window + snapshot) == statistics


def test_hardly_varies_needs_enough_reviews():
    constant = ReviewStatistics()
    constant.add(reviews(*[0.51] * 19))
    assert not constant.hardly_varies()  # 19 reviews say nothing yet
    constant.add(reviews(0.51))
    assert constant.hardly_varies()
    varying = ReviewStatistics()
    varying.add(reviews(*[0.1, 0.9] * 10))
    assert not varying.hardly_varies()


def test_state_dict_restores_in_place():
    statistics = ReviewStatistics()
    statistics.add(reviews(0.3, None))
    restored = ReviewStatistics()
    held = restored  # a reviewer holds this object
    restored.load_state_dict(statistics.state_dict())
    assert held == statistics


def test_queries_file_carries_the_reviewer_and_adds_it_on_resume(tmp_path):
    path = str(tmp_path / "queries.json")
    first = ReviewStatistics()
    first.add(reviews(0.2, None), references=reviews(0.0, 0.0))
    write_queries_file(path, {"reviewer": {"queries": 2, "failures": 1}}, reviewer=first)
    with open(path) as f:
        content = json.load(f)
    assert content["reviewer"]["failed_share"] == 0.5 and content["reviewer"]["agreement"] == 1.0
    second = ReviewStatistics()
    second.add(reviews(0.8, 0.8), references=reviews(0.0, 1.0))
    content = write_queries_file(path, {"reviewer": {"queries": 2}}, add_to_existing=True, reviewer=second)
    assert content["reviewer"]["reviews"] == 4 and content["reviewer"]["failed"] == 1
    assert content["reviewer"]["agreement"] == pytest.approx(2 / 3)
    # A stage without an LLM reviewer writes none
    assert "reviewer" not in write_queries_file(str(tmp_path / "rules.json"), {"reviewer": {"queries": 3}})
