import random

import pytest

from instrl_trl.backends import RulesReviewer, RulesRewriter
from instrl_trl.backends.accounting import QueryAccounting
from instrl_trl.constraints import Constraint
from instrl_trl.environment import STOP_ACTION, Episode, InstructionEnv, StepResult, format_state
from instrl_trl.operations import DEFAULT_OPERATIONS, Operation, OperationLibrary


# One seed per behaviour: a general term to concretize, a reasoning task on data, an inquiry, a plain writing task.
CITY = "Plan a trip to a city."
REASONING = "Calculate the average of the sales figures."
PLAIN = "Describe the water cycle."
POEM = "Write a poem about the ocean."
SEEDS = [CITY, REASONING, PLAIN, POEM]


def make_env(max_operations=6, seed=0, accounting=None):
    return InstructionEnv(
        DEFAULT_OPERATIONS,
        RulesRewriter(slip_rate=0.0),  # no slips: each test names what each operation does
        RulesReviewer(),
        max_operations=max_operations,
        accounting=accounting,
        seed=seed,
    )


def test_reset_starts_one_episode_per_seed():
    env = make_env()
    states = env.reset(SEEDS)
    assert states == [format_state(seed, []) for seed in SEEDS]
    assert env.running == [0, 1, 2, 3]
    assert not env.all_done
    assert env.action_names == [*DEFAULT_OPERATIONS.names, STOP_ACTION]
    for seed, episode in zip(SEEDS, env.episodes, strict=True):
        assert episode == Episode(seed=seed, instruction=seed)
    # a second reset forgets the first batch
    env.step([STOP_ACTION] * 4)
    assert env.all_done
    env.reset(SEEDS[:2])
    assert env.running == [0, 1]


def test_useful_operations_change_the_instruction_and_are_accepted():
    env = make_env()
    env.reset(SEEDS)
    actions = ["concretizing", "increase_reasoning_steps", "deepening", "add_constraints"]
    result = env.step(actions)
    assert isinstance(result, StepResult)
    assert result.episode_indices == [0, 1, 2, 3]
    assert result.operation == actions
    assert result.instructions == SEEDS
    assert result.accepted == [True] * 4
    assert result.information_gain == [True] * 4
    assert result.elimination == [None] * 4
    assert result.queries == [2] * 4  # one rewrite + one review each
    assert result.done == [False] * 4
    for k, episode in enumerate(env.episodes):
        assert episode.instruction == result.new_instructions[k] != SEEDS[k]
        assert episode.history == [actions[k]]
        assert [evolution.instruction for evolution in episode.accepted] == [episode.instruction]
        assert not episode.done and episode.end_reason is None
    assert "a city" not in env.episodes[0].instruction
    assert env.episodes[3].instruction.startswith(POEM)
    assert result.reward_kwargs() == {
        "operation": actions,
        "information_gain": [True] * 4,
        "elimination": [None] * 4,
        "accepted": [True] * 4,
        "queries": [2] * 4,
    }


def test_operation_without_gain_keeps_the_instruction_but_records_the_operation():
    env = make_env()
    env.reset([PLAIN, REASONING])
    first = env.step(["concretizing", "complicate_input"])  # PLAIN has no general term to concretize
    assert first.accepted == [False, True]
    assert first.queries == [2, 2]
    after_input = env.episodes[1].instruction
    second = env.step(["deepening", "complicate_input"])  # a second input block adds nothing
    assert second.accepted == [True, False]
    assert second.information_gain == [True, False]
    assert second.elimination == [None, None]
    assert second.queries == [2, 2]  # the reviewer was still asked
    assert second.done == [False, False]
    plain, reasoning = env.episodes
    assert plain.history == ["concretizing", "deepening"]
    assert reasoning.history == ["complicate_input", "complicate_input"]
    assert reasoning.instruction == after_input
    assert [evolution.instruction for evolution in reasoning.accepted] == [after_input]
    assert [evolution.instruction for evolution in plain.accepted] == [plain.instruction]
    # two operations tried, one accepted evolution
    assert [(evolution.operations, evolution.evolutions) for evolution in plain.accepted] == [
        (("concretizing", "deepening"), 1)
    ]
    assert env.states()[1] == format_state(after_input, ["complicate_input", "complicate_input"])


def test_stop_ends_the_episode_without_a_query():
    accounting = QueryAccounting()
    env = make_env(accounting=accounting)
    env.reset([CITY, POEM])
    result = env.step([STOP_ACTION, "add_constraints"])
    assert result.queries == [0, 2]
    assert result.done == [True, False]
    assert result.accepted[0] is False and result.information_gain[0] is False
    assert result.new_instructions[0] == CITY
    assert accounting.as_dict() == {"rewriter": 1, "reviewer": 1, "expert": 0}
    stopped = env.episodes[0]
    assert stopped.done and stopped.end_reason == "stop"
    assert stopped.history == [] and stopped.instruction == CITY
    assert env.running == [1]
    assert len(env.states()) == 1
    # the stopped episode takes no further action
    result = env.step(["deepening"])
    assert result.episode_indices == [1]


def test_elimination_ends_the_episode_and_costs_only_the_rewrite():
    env = make_env()
    env.reset([CITY, POEM])
    env.step(["concretizing", "deepening"])
    before = env.episodes[0].instruction
    result = env.step(["breadth", "add_constraints"])  # breadth on an evolved instruction copies the template
    assert result.elimination == ["template_copy", None]
    assert result.queries == [1, 2]  # no reviewer query for an eliminated rewrite
    assert result.accepted == [False, True]
    assert result.information_gain[0] is False
    assert result.done == [True, False]
    eliminated = env.episodes[0]
    assert eliminated.end_reason == "elimination:template_copy"
    assert eliminated.instruction == before
    assert eliminated.history == ["concretizing", "breadth"]
    assert env.running == [1]
    assert env.accounting.as_dict() == {"rewriter": 4, "reviewer": 3, "expert": 0}


def test_elimination_can_leave_the_episode_running():
    env = InstructionEnv(DEFAULT_OPERATIONS, RulesRewriter(), RulesReviewer(), end_on_elimination=False)
    env.reset([CITY])
    env.step(["concretizing"])
    before = env.episodes[0].instruction
    result = env.step(["breadth"])
    assert result.elimination == ["template_copy"]
    assert result.queries == [1]
    assert result.accepted == [False] and result.done == [False]
    episode = env.episodes[0]
    assert not episode.done and episode.end_reason is None
    assert episode.instruction == before
    assert episode.history == ["concretizing", "breadth"]
    assert env.step(["add_constraints"]).accepted == [True]  # the episode goes on from the last instruction
    assert [(len(e.operations), e.evolutions) for e in episode.accepted] == [(1, 1), (3, 2)]


def test_breadth_as_first_operation_is_not_eliminated():
    env = make_env()
    env.reset([POEM])
    result = env.step(["breadth"])
    assert result.elimination == [None]
    assert result.accepted == [True]
    assert env.episodes[0].instruction != POEM


def test_max_operations_ends_the_episode():
    env = make_env(max_operations=2)
    env.reset([PLAIN, CITY])
    result = env.step(["concretizing", "concretizing"])  # operations without gain count too
    assert result.done == [False, False]
    result = env.step(["deepening", "deepening"])
    assert result.done == [True, True]
    assert env.all_done
    assert [episode.end_reason for episode in env.episodes] == ["max_operations", "max_operations"]
    assert env.states() == []


def test_max_operations_must_be_positive():
    with pytest.raises(ValueError, match="max_operations"):
        make_env(max_operations=0)


def test_operation_the_rules_engine_cannot_apply_fails_at_construction():
    operations = OperationLibrary(
        [Operation(name="translate", description="Translate.", prompt_template="Translate: {instruction}")]
    )
    with pytest.raises(ValueError, match="translate"):
        InstructionEnv(operations, RulesRewriter(), RulesReviewer())


def test_query_accounting_matches_the_step_results():
    accounting = QueryAccounting()
    env = make_env(accounting=accounting)
    env.reset(SEEDS)
    rng = random.Random(0)
    queries = steps = 0
    while not env.all_done:
        before = accounting.as_dict()
        result = env.step([rng.choice(env.action_names) for _ in env.running])
        steps += 1
        queries += sum(result.queries)
        # each query of a StepResult is one rewrite (the first) or one review (the second)
        assert accounting["rewriter"] - before["rewriter"] == sum(q >= 1 for q in result.queries)
        assert accounting["reviewer"] - before["reviewer"] == sum(q == 2 for q in result.queries)
        assert accounting.total == queries
    assert 1 <= steps <= 6
    assert accounting["expert"] == 0
    assert env.accounting is accounting


def test_actions_by_name_and_by_index_are_the_same():
    by_name, by_index = make_env(), make_env()
    by_name.reset(SEEDS)
    by_index.reset(SEEDS)
    names = ["concretizing", "increase_reasoning_steps", STOP_ACTION, "add_constraints"]
    indices = [by_index.action_names.index(name) for name in names]
    assert indices[2] == len(DEFAULT_OPERATIONS)
    assert by_name.step(names) == by_index.step(indices)
    assert by_name.episodes == by_index.episodes
    mixed = make_env()
    mixed.reset(SEEDS)
    assert mixed.step([indices[0], names[1], indices[2], names[3]]).operation == names


def test_wrong_number_of_actions_raises():
    env = make_env()
    env.reset(SEEDS)
    with pytest.raises(ValueError, match="`actions` has 3 entries but 4 episodes are running"):
        env.step(["deepening"] * 3)
    env.step([STOP_ACTION, "deepening", "deepening", "deepening"])
    with pytest.raises(ValueError, match="4 entries but 3"):
        env.step(["deepening"] * 4)


def test_unknown_action_raises_before_any_query():
    env = make_env()
    env.reset(SEEDS[:2])
    with pytest.raises(ValueError, match="Unknown actions \\['translate'\\].*stop"):
        env.step(["deepening", "translate"])
    assert env.accounting.total == 0
    assert all(episode.history == [] for episode in env.episodes)


def run_episodes(env, seeds, actions_per_step):
    env.reset(seeds)
    trajectory = []
    for actions in actions_per_step:
        if env.all_done:
            break
        trajectory.append(env.step(actions[: len(env.running)]))
    return trajectory


ACTIONS = [
    ["add_constraints"] * 4,
    ["add_constraints", "concretizing", "deepening", "complicate_input"],
    ["breadth", "add_constraints", "add_constraints", "deepening"],
    ["increase_reasoning_steps"] * 4,
]


def test_same_seed_gives_identical_trajectories():
    first, second = make_env(seed=3), make_env(seed=3)
    trajectory = run_episodes(first, SEEDS, ACTIONS)
    assert trajectory == run_episodes(second, SEEDS, ACTIONS)
    assert first.episodes == second.episodes
    assert first.accounting.as_dict() == second.accounting.as_dict()


def test_another_run_seed_may_change_the_constraints():
    def constraints(seed):
        env = make_env(seed=seed)
        env.reset(SEEDS)
        env.step(["add_constraints"] * 4)
        return [episode.constraints for episode in env.episodes]

    reference = constraints(0)
    assert reference == constraints(0)
    assert any(constraints(seed) != reference for seed in range(1, 4))


def test_constraints_are_carried_on_the_episode():
    env = make_env()
    env.reset(SEEDS)
    env.step(["add_constraints"] * 4)
    env.step(["add_constraints", "deepening", "add_constraints", STOP_ACTION])
    # the three tasks carry their one constraint; the inquiry (PLAIN) takes none
    assert [len(episode.constraints) for episode in env.episodes] == [1, 1, 0, 1]
    for episode in env.episodes:
        for constraint in episode.constraints:
            assert isinstance(constraint, Constraint)
            assert ":" in constraint.instruction_id
            assert isinstance(constraint.kwargs, dict)
            assert constraint.description() in episode.instruction


def test_a_second_constraint_adds_nothing():
    env = make_env()
    env.reset([POEM])
    assert env.step(["add_constraints"]).accepted == [True]
    carried = env.episodes[0].constraints
    result = env.step(["add_constraints"])
    assert result.accepted == [False]
    assert env.episodes[0].constraints == carried


def test_format_state():
    assert format_state("Name three rivers.", []) == "operations: none | words: 3 | Name three rivers."
    assert (
        format_state("Name three rivers.", ("deepening",)) == "operations: deepening | words: 3 | Name three rivers."
    )
    assert (
        format_state("Name  three\nrivers in Spain.", ["deepening", "deepening", "breadth"])
        == "operations: deepening, deepening, breadth | words: 5 | Name  three\nrivers in Spain."
    )


def test_states_follow_the_running_episodes():
    env = make_env()
    env.reset([CITY, PLAIN])
    env.step(["concretizing", STOP_ACTION])
    (state,) = env.states()
    instruction = env.episodes[0].instruction
    assert state == f"operations: concretizing | words: {len(instruction.split())} | {instruction}"


def test_resumed_copies_branch_without_touching_the_original():
    env = make_env()
    env.reset(SEEDS)
    env.step(["add_constraints"] * 4)
    branch_point = [episode.copy() for episode in env.episodes]
    before = [(episode.instruction, list(episode.history), list(episode.accepted)) for episode in branch_point]

    # One branch goes on from copies as if never interrupted
    states = env.resume([episode.copy() for episode in branch_point])
    assert states == [format_state(e.instruction, e.history) for e in branch_point if not e.done]
    env.step(["concretizing"] * len(env.running))
    straight = make_env()
    straight.reset(SEEDS)
    straight.step(["add_constraints"] * 4)
    straight.step(["concretizing"] * len(straight.running))
    assert env.episodes == straight.episodes

    # The episodes at the branch point did not change: another branch starts from them
    assert [(episode.instruction, episode.history, episode.accepted) for episode in branch_point] == before
    running = [not episode.done for episode in branch_point]
    env.resume(branch_point)
    env.step(["deepening"] * sum(running))
    expected = [
        history + ["deepening"] if run else history for (_, history, _), run in zip(before, running, strict=True)
    ]
    assert [episode.history for episode in env.episodes] == expected
