import pytest
import torch

from instrl_trl.backends import RulesReviewer, RulesRewriter
from instrl_trl.backends.accounting import QueryAccounting
from instrl_trl.constraints import Constraint
from instrl_trl.environment import STOP_ACTION, InstructionEnv
from instrl_trl.generation.evolve import Candidate, evolve_seeds
from instrl_trl.operations import DEFAULT_OPERATIONS
from instrl_trl.rewards.scoring import weighted_rewards


WATER = "Write a guide to the water cycle for people."  # add_constraints, then concretizing: two accepted steps
HAIKU = "Write a haiku about the ocean."  # add_constraints, then concretizing (no general term): one accepted
RIVERS = "Name three rivers."  # stops at once: nothing accepted
SEEDS = [WATER, HAIKU, RIVERS]
SEED_INDICES = [10, 11, 12]
# One list of actions per call of the policy, one action per running episode (in episode order)
SCRIPT = [
    ["add_constraints", "add_constraints", STOP_ACTION],
    ["concretizing", "concretizing"],
    [STOP_ACTION, STOP_ACTION],
]


def accepted_reward(instructions, new_instructions, accepted, **kwargs):
    return [1.0 if a else 0.0 for a in accepted]


def query_reward(instructions, new_instructions, queries, **kwargs):
    return [float(q) for q in queries]


WEIGHTS = torch.tensor([2.0, -0.25])
# a step's weighted reward: 2 * accepted - 0.25 * queries (one rewrite + one review for a step that is not `stop`)
ACCEPTED_STEP, REJECTED_STEP, STOP_STEP = 2.0 - 0.5, -0.5, 0.0


def score(result):
    return weighted_rewards(
        [accepted_reward, query_reward],
        WEIGHTS,
        result.instructions,
        result.new_instructions,
        **result.reward_kwargs(),
    )[0]


class ScriptedPolicy:
    """An `act_fn` that plays fixed actions, and records the states it was shown."""

    def __init__(self, env, script):
        self.env, self.script, self.states = env, list(script), []

    def __call__(self, states):
        self.states.append(list(states))
        names = self.script.pop(0)
        assert len(names) == len(states)
        actions = torch.tensor([self.env.action_names.index(name) for name in names])
        return actions, torch.zeros(len(names)), torch.zeros(len(names))


def run(keep_intermediate, seeds=SEEDS, seed_indices=SEED_INDICES, script=SCRIPT):
    rewriter = RulesRewriter(slip_rate=0.0)  # no slips: the script names what each step does
    env = InstructionEnv(DEFAULT_OPERATIONS, rewriter, RulesReviewer(), accounting=QueryAccounting())
    policy = ScriptedPolicy(env, script)
    candidates = evolve_seeds(env, policy, seeds, seed_indices, score, keep_intermediate=keep_intermediate)
    assert policy.script == []  # every scripted step was played
    return env, policy, candidates


def test_keep_intermediate_returns_every_accepted_step():
    env, policy, candidates = run(keep_intermediate=True)
    assert len(policy.states) == 3
    assert all(isinstance(c, Candidate) for c in candidates)
    water_1, water_2, haiku = candidates

    assert [c.seed for c in candidates] == [WATER, WATER, HAIKU]
    assert [c.seed_index for c in candidates] == [10, 10, 11]  # the caller's indices, not batch positions
    assert [c.operations for c in candidates] == [
        ("add_constraints",),
        ("add_constraints", "concretizing"),
        ("add_constraints",),
    ]
    assert [c.depth for c in candidates] == [1, 2, 1]
    assert [c.evolutions for c in candidates] == [1, 2, 1]
    assert [e.evolutions for e in env.episodes[0].accepted] == [1, 2]
    assert [c.reward for c in candidates] == pytest.approx([ACCEPTED_STEP, 2 * ACCEPTED_STEP, ACCEPTED_STEP])

    # the instructions are the environment's accepted ones
    assert [c.instruction for c in candidates] == [
        *(e.instruction for e in env.episodes[0].accepted),
        env.episodes[1].accepted[0].instruction,
    ]
    assert water_1.instruction.startswith(WATER) and water_1.instruction != WATER
    assert "people" in water_1.instruction and "people" not in water_2.instruction
    assert haiku.instruction.startswith(HAIKU)

    # constraints: the one added by add_constraints, carried through the concretizing step
    for c in candidates:
        assert len(c.constraints) == 1
        assert isinstance(c.constraints[0], Constraint)
        assert c.constraints[0].instruction_id
        assert c.constraints[0].description() in c.instruction
    assert water_2.constraints == water_1.constraints


def test_without_keep_intermediate_only_the_last_accepted_step_is_kept():
    env, _, candidates = run(keep_intermediate=False)
    assert [(c.seed_index, c.operations) for c in candidates] == [
        (10, ("add_constraints", "concretizing")),
        (11, ("add_constraints",)),  # the later concretizing step was not accepted
    ]
    assert candidates[0].instruction == env.episodes[0].instruction
    assert candidates[1].instruction == env.episodes[1].instruction
    assert [c.reward for c in candidates] == pytest.approx([2 * ACCEPTED_STEP, ACCEPTED_STEP])


def test_reward_is_cumulative_up_to_the_accepted_step():
    # a rejected step before an accepted one counts in its reward; steps after it do not
    script = [["concretizing"], ["add_constraints"], ["concretizing"], [STOP_ACTION]]
    _, _, candidates = run(True, seeds=[HAIKU], seed_indices=[0], script=script)
    assert len(candidates) == 1
    assert candidates[0].operations == ("concretizing", "add_constraints")
    assert candidates[0].depth == 2  # operations tried
    assert candidates[0].evolutions == 1  # the rejected concretizing step is not an evolution
    assert candidates[0].reward == pytest.approx(REJECTED_STEP + ACCEPTED_STEP)


def test_seeds_without_an_accepted_instruction_give_no_candidate():
    script = [["concretizing", STOP_ACTION], [STOP_ACTION]]
    env, _, candidates = run(True, seeds=[HAIKU, RIVERS], seed_indices=[0, 1], script=script)
    assert candidates == []
    assert [e.end_reason for e in env.episodes] == [STOP_ACTION, STOP_ACTION]
    assert env.episodes[0].history == ["concretizing"]
