"""
The bandit learns: in a world where one operation pays for questions and another for tasks, its choices after a
burn-in favour the paying one in each family, and a feature-blind bandit cannot split them.
"""

import doctest
import random

import pytest

from instrl_trl.backends.base import Review, Reviewer, Rewrite, Rewriter
from instrl_trl.environment import STOP_ACTION
from instrl_trl.generation.policies import BanditPolicy, baseline_policy, load_generation_policy, policy_kind
from instrl_trl.generation.policy_evaluation import evaluate_policy, evaluation_setup
from instrl_trl.operations import Operation, OperationLibrary
from instrl_trl.policies import bandit as bandit_module
from instrl_trl.policies.bandit import OperationBandit, instruction_family


ASK, DO, IDLE = "ask", "do", "idle"
QUESTIONS = [f"Why does river {i} flood?" for i in range(60)]
TASKS = [f"Write a note about river {i}." for i in range(60)]


class FamilyRewriter(Rewriter):
    """`ask` adds information to a question, `do` to a task; anything else adds nothing."""

    def rewrite(self, requests):
        rewrites = []
        for request in requests:
            pays = request.operation.name == (ASK if "?" in request.instruction else DO)
            grown = f"{request.instruction} more{len(request.history)}"
            rewrites.append(Rewrite(grown if pays else request.instruction))
        return rewrites


class ChangeReviewer(Reviewer):
    def review(self, originals, rewrites):
        return [
            Review(new != old, "Not Equal" if new != old else "Equal")
            for old, new in zip(originals, rewrites, strict=True)
        ]


OPERATIONS = OperationLibrary(Operation(name, f"The {name}.", "{instruction}") for name in (ASK, DO, IDLE))


def _first_choices(policy: BanditPolicy, seeds: list[str], stream_seed: int) -> list[str]:
    rng = random.Random(stream_seed)
    return [policy.bandit.choose(seed, [], rng) for seed in seeds]


def _interleaved():
    return [seed for pair in zip(QUESTIONS, TASKS, strict=True) for seed in pair]


def test_bandit_learns_the_paying_operation_per_family():
    policy = BanditPolicy(OPERATIONS)
    setup = evaluation_setup(FamilyRewriter(), ChangeReviewer(), max_operations=2, seed=0)
    evaluate_policy(policy, setup, _interleaved()[:80], batch_size=8)  # the burn-in, learning as it plays
    questions, tasks = _first_choices(policy, QUESTIONS[40:], 1), _first_choices(policy, TASKS[40:], 2)
    assert questions.count(ASK) >= 0.9 * len(questions), questions
    assert tasks.count(DO) >= 0.9 * len(tasks), tasks
    rates = policy.bandit.success_rates("question")
    assert rates[ASK] > 0.8 and rates[DO] < 0.2


def test_feature_blind_bandit_does_not_split_the_families():
    policy = baseline_policy("bandit:blind", OPERATIONS)
    setup = evaluation_setup(FamilyRewriter(), ChangeReviewer(), max_operations=2, seed=0)
    evaluate_policy(policy, setup, _interleaved()[:80], batch_size=8)
    questions, tasks = _first_choices(policy, QUESTIONS[40:], 1), _first_choices(policy, TASKS[40:], 2)
    # One table for both families: whatever it prefers, it prefers it for both, so one family gets the wrong one
    assert min(questions.count(ASK) / len(questions), tasks.count(DO) / len(tasks)) < 0.75
    assert policy.bandit.success_rates("question") == policy.bandit.success_rates("task")


def test_bandit_is_deterministic_given_the_seed_and_spends_less_than_uniform():
    setup = evaluation_setup(FamilyRewriter(), ChangeReviewer(), max_operations=3, seed=7)
    seeds = _interleaved()
    first = evaluate_policy(baseline_policy("bandit", OPERATIONS), setup, seeds, batch_size=16)
    again = evaluate_policy(baseline_policy("bandit", OPERATIONS), setup, seeds, batch_size=16)
    assert first.costs == again.costs and first.num_sequences == again.num_sequences
    uniform = evaluate_policy(baseline_policy("uniform", OPERATIONS), setup, seeds, batch_size=16)
    assert first.costs.queries_per_evolution < 0.7 * uniform.costs.queries_per_evolution


def test_choices_never_repeat_and_stop_when_nothing_pays():
    bandit = OperationBandit([ASK, DO], stop_below=0.3)
    rng = random.Random(0)
    assert bandit.choose("Why?", [ASK, DO], rng) == STOP_ACTION  # nothing left
    assert bandit.choose("Why?", [ASK], rng) == DO
    for _ in range(50):
        bandit.update("Why?", ASK, False)
        bandit.update("Why?", DO, False)
    assert bandit.choose("Why?", [], rng) == STOP_ACTION  # both arms known not to pay for questions
    assert bandit.choose("Write it.", [], rng) in (ASK, DO)  # tasks have their own table


def test_kind_and_loading():
    assert policy_kind("bandit") == policy_kind("bandit:blind") == "bandit"
    loaded = load_generation_policy("bandit")
    assert isinstance(loaded, BanditPolicy) and loaded.bandit.use_features
    with pytest.raises(ValueError, match="stop_below"):
        OperationBandit([ASK], stop_below=1.0)


def test_instruction_family():
    assert instruction_family("How do tides work") == "question"
    assert instruction_family("List three rivers.") == "task"
    assert doctest.testmod(bandit_module).failed == 0
