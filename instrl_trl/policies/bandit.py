"""
An online bandit over operations: the baseline a user tries first to spend fewer queries without training anything
(simple selection baselines often match LLM-specific methods at a fixed teacher budget, arXiv 2512.00884).

Thompson sampling with a Beta(1, 1) prior per operation, one table per cheap feature of the current instruction
(a question or a task, [`instruction_family`]) or one table for all (`use_features=False`). An arm's reward is the
reviewer's verdict: 1 when the rewrite was accepted (an evolution), 0 when it added nothing or was eliminated. Within
an episode an operation is applied at most once (a repeat rarely adds information, and one table per family cannot
tell a first use from a repeat); the episode stops when no operation is left, or when the best sampled success
probability of those left is below `stop_below` (the next query is unlikely to pay). Sampling draws from a stream
the caller seeds per episode, so that choices are deterministic given the run seed and the order of the updates.
"""

import random
from collections.abc import Sequence

from ..environment import STOP_ACTION


# The first words of a question; a cheap reading of the text, not the rules engine's own (the bandit must not peek)
_QUESTION_WORDS = frozenset(
    {"what", "why", "how", "when", "where", "who", "whom", "whose", "which", "is", "are", "was", "were", "do", "does",
     "did", "can", "could", "should", "would", "will", "may", "might", "has", "have"}
)  # fmt: skip
FAMILIES = ("question", "task")


def instruction_family(instruction: str) -> str:
    """
    `"question"` for an instruction that asks (ends with `?` or opens with a question word), else `"task"`.

    Example:
    ```python
    >>> instruction_family("Why is the sky blue?"), instruction_family("Write a poem about the sea.")
    ('question', 'task')

    ```
    """
    words = instruction.strip().split()
    first = words[0].lower().strip(",.:;!") if words else ""
    return "question" if instruction.rstrip().endswith("?") or first in _QUESTION_WORDS else "task"


class OperationBandit:
    r"""
    Thompson sampling over operations, per instruction family (see the module docstring).

    Args:
        operations (`Sequence[str]`):
            The arms, in a fixed order (ties go to the first).
        use_features (`bool`, *optional*, defaults to `True`):
            One table per [`instruction_family`]; `False`: one table for every instruction (feature-blind).
        stop_below (`float`, *optional*, defaults to `0.3`):
            Stop an episode when the best sampled success probability of the operations left is below this.
    """

    def __init__(self, operations: Sequence[str], use_features: bool = True, stop_below: float = 0.3):
        if not operations:
            raise ValueError("`operations` is empty: a bandit needs at least one operation to choose from.")
        if not 0.0 <= stop_below < 1.0:
            raise ValueError(f"`stop_below` must be in [0, 1), got {stop_below!r}.")
        self.operations = list(operations)
        self.use_features = use_features
        self.stop_below = stop_below
        contexts = FAMILIES if use_features else ("all",)
        # context -> operation -> [successes, failures]
        self.counts = {context: {name: [0, 0] for name in self.operations} for context in contexts}

    def context(self, instruction: str) -> str:
        return instruction_family(instruction) if self.use_features else "all"

    def choose(self, instruction: str, history: Sequence[str], rng: random.Random) -> str:
        """The operation to apply to `instruction` (after `history`), or `stop`."""
        counts = self.counts[self.context(instruction)]
        left = [name for name in self.operations if name not in history]
        if not left:
            return STOP_ACTION
        # One draw per arm left, in a fixed order, so that the stream is consumed the same way every run
        samples = [rng.betavariate(1 + counts[name][0], 1 + counts[name][1]) for name in left]
        best = max(range(len(left)), key=lambda k: (samples[k], -k))
        return left[best] if samples[best] >= self.stop_below else STOP_ACTION

    def update(self, instruction: str, operation: str, accepted: bool) -> None:
        """Learns from one verdict: `operation` applied to `instruction` was accepted, or not."""
        self.counts[self.context(instruction)][operation][0 if accepted else 1] += 1

    def success_rates(self, family: str | None = None) -> dict[str, float]:
        """Posterior mean success probability of each operation in `family`'s table (the prior's is 1/2)."""
        counts = self.counts[self.context_name(family)]
        return {name: (1 + wins) / (2 + wins + losses) for name, (wins, losses) in counts.items()}

    def context_name(self, family: str | None) -> str:
        return family if self.use_features and family is not None else "all"

    def num_updates(self) -> int:
        return sum(wins + losses for table in self.counts.values() for wins, losses in table.values())

    def state_dict(self) -> dict:
        return {"counts": self.counts}

    def load_state_dict(self, state: dict) -> None:
        for context, table in state["counts"].items():
            for name, pair in table.items():
                self.counts[context][name] = [int(pair[0]), int(pair[1])]
