"""
Operation policies that need no training, as [`~instrl_trl.policy.ActFn`]s: Evol-Instruct's uniform-random choice
(the paper's baseline), a random choice that never repeats an operation within an episode, and a fixed sequence of
operations. `build_baseline_policy("uniform" | "no_repeat" | "sequence:a,b", ...)` turns a command-line value into one.
"""

import math

import torch

from ..environment import STOP_ACTION
from ..policy import ActFn


def uniform_policy(num_actions: int, generator: torch.Generator | None = None, allow_stop: bool = False) -> ActFn:
    """
    The Evol-Instruct baseline: every operation with equal probability, whatever the state. The `stop` action (the
    last one) is excluded unless `allow_stop`, as Evol-Instruct always applies its rounds.
    """
    choices = num_actions if allow_stop else num_actions - 1

    def act(states: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        actions = torch.randint(choices, (len(states),), generator=generator)
        return actions, torch.full((len(states),), -math.log(choices)), torch.zeros(len(states))

    return act


def _operations_applied(state: str) -> list[str]:
    # The state opens with "operations: a, b | ..." or "operations: none | ..." (`environment.format_state`)
    applied = state.split(" | ", 1)[0].removeprefix("operations: ")
    return [] if applied == "none" else applied.split(", ")


def no_repeat_policy(action_names: list[str], generator: torch.Generator | None = None) -> ActFn:
    """
    A random heuristic: an operation drawn uniformly among those not yet applied in the episode (read from the state's
    history), then `stop` (the last action) once every operation was applied.
    """
    stop = action_names.index(STOP_ACTION)
    operations = [index for index, name in enumerate(action_names) if name != STOP_ACTION]

    def act(states: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        actions, logprobs = [], []
        for state in states:
            applied = set(_operations_applied(state))
            left = [index for index in operations if action_names[index] not in applied]
            if left:
                actions.append(left[int(torch.randint(len(left), (1,), generator=generator))])
            else:
                actions.append(stop)
            logprobs.append(-math.log(len(left)) if left else 0.0)
        return torch.tensor(actions), torch.tensor(logprobs), torch.zeros(len(states))

    return act


def sequence_policy(action_names: list[str], sequence: list[str]) -> ActFn:
    """
    Applies `sequence` in order to every seed, then `stop`: the same operations for all instructions, as a fixed
    recipe would. The position in the sequence is read from the state (the operations applied so far).
    """
    unknown = [name for name in sequence if name not in action_names]
    if unknown or not sequence:
        raise ValueError(
            f"A sequence policy needs one or more operations from {action_names}; got {sequence} (unknown: {unknown})."
        )
    ids = [action_names.index(name) for name in sequence] + [action_names.index(STOP_ACTION)]

    def act(states: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        actions = torch.tensor([ids[min(len(_operations_applied(state)), len(ids) - 1)] for state in states])
        return actions, torch.zeros(len(states)), torch.zeros(len(states))

    return act


def build_baseline_policy(spec: str, action_names: list[str], seed: int = 0) -> ActFn:
    """
    `"uniform"` -> [`uniform_policy`] and `"no_repeat"` -> [`no_repeat_policy`], seeded with `seed`; `"sequence:a,b"`
    -> [`sequence_policy`] over a, then b.
    """
    if spec == "uniform":
        return uniform_policy(len(action_names), torch.Generator().manual_seed(seed))
    if spec == "no_repeat":
        return no_repeat_policy(action_names, torch.Generator().manual_seed(seed))
    if spec.startswith("sequence:"):
        return sequence_policy(action_names, [name.strip() for name in spec.removeprefix("sequence:").split(",")])
    raise ValueError(f"Unknown baseline policy {spec!r}: use 'uniform', 'no_repeat' or 'sequence:<op>,<op>,...'.")
