import math

import pytest
import torch

from instrl_trl.environment import STOP_ACTION, format_state
from instrl_trl.policies.baselines import (
    build_baseline_policy,
    no_repeat_policy,
    sequence_policy,
    uniform_policy,
)


ACTIONS = ["deepening", "concretizing", "add_constraints", STOP_ACTION]


def test_uniform_policy_never_stops_and_is_seeded():
    states = [format_state("Name a river.", [])] * 400
    actions, logprobs, values = uniform_policy(len(ACTIONS), torch.Generator().manual_seed(3))(states)
    again, _, _ = uniform_policy(len(ACTIONS), torch.Generator().manual_seed(3))(states)
    assert torch.equal(actions, again)
    assert set(actions.tolist()) == {0, 1, 2}  # every operation, never `stop`
    torch.testing.assert_close(logprobs, torch.full((400,), -math.log(3)))
    assert torch.equal(values, torch.zeros(400))


def test_sequence_policy_follows_the_sequence_then_stops():
    act_fn = build_baseline_policy("sequence:add_constraints,deepening", ACTIONS)
    histories = [[], ["add_constraints"], ["add_constraints", "deepening"], ["add_constraints", "deepening", "x"]]
    actions, _, _ = act_fn([format_state("Name a river.", history) for history in histories])
    assert [ACTIONS[a] for a in actions.tolist()] == ["add_constraints", "deepening", STOP_ACTION, STOP_ACTION]


def test_no_repeat_policy_never_repeats_and_stops_after_every_operation():
    operations = ACTIONS[:-1]
    act_fn = build_baseline_policy("no_repeat", ACTIONS, seed=1)
    for episode in range(20):
        history = []
        while True:
            actions, logprobs, _ = act_fn([format_state("Name a river.", history)])
            name = ACTIONS[actions.item()]
            left = len(operations) - len(history)
            torch.testing.assert_close(logprobs, torch.tensor([-math.log(left) if left else 0.0]))
            if name == STOP_ACTION:
                break
            assert name not in history, (episode, history, name)
            history.append(name)
        assert sorted(history) == sorted(operations)  # it stops only once every operation was applied


def test_no_repeat_policy_is_seeded():
    histories = [[], ["deepening"], ["concretizing"], ["add_constraints"]] * 100
    states = [format_state("Name a river.", history) for history in histories]

    def choices(seed):
        return no_repeat_policy(ACTIONS, torch.Generator().manual_seed(seed))(states)[0]

    assert torch.equal(choices(3), choices(3))
    assert not torch.equal(choices(3), choices(4))
    # every operation left is drawn, `stop` never while one is left
    assert {ACTIONS[a] for a in choices(3)[1::4].tolist()} == {"concretizing", "add_constraints"}
    assert torch.equal(build_baseline_policy("no_repeat", ACTIONS, seed=3)(states)[0], choices(3))


@pytest.mark.parametrize(("spec", "match"), [("sequence:teleport", "teleport"), ("greedy", "Unknown baseline")])
def test_bad_baseline_policy_names_the_problem(spec, match):
    with pytest.raises(ValueError, match=match):
        build_baseline_policy(spec, ACTIONS)
    with pytest.raises(ValueError, match="one or more operations"):
        sequence_policy(ACTIONS, [])
