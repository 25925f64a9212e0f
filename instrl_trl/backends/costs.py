"""
What a policy's LLM queries and tokens bought: the project's cost ratios, each defined here once, with one rule for an
empty denominator, and the labels under which the training logs, the cards, the README and the benchmarks print them.

The counts, for a set of episodes (one per seed, or as many as a budget allows):

- an *evolution* is an accepted step: a rewrite that passed the elimination rules and the reviewer;
- a *kept instruction* is what an episode with at least one evolution yields: its last evolved instruction;
- a *deep* instruction is a kept one made by at least `min_evolutions` evolutions (3 by default: "3+ evolutions").

Two rules for an empty denominator: a **ratio** of a cost to what it bought is `inf` when nothing was bought (a policy
that buys nothing is infinitely wasteful, and `inf` sorts last when looking for the cheapest policy); a **rate** (a
share, as the accepted rate) is `NaN` when there was nothing to share (undefined, and printed as such).
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


MIN_EVOLUTIONS = 3

# The one name and label of each ratio: logs (`queries/<name without "queries_">`), cards, README and benchmarks
RATIO_LABELS = {
    "queries_per_evolution": "LLM queries per accepted evolution",
    "queries_per_instruction": "LLM queries per kept instruction",
    "queries_per_deep_instruction": "LLM queries per instruction of {min_evolutions}+ evolutions",
    "tokens_per_instruction": "tokens per kept instruction",
    "tokens_per_deep_instruction": "tokens per instruction of {min_evolutions}+ evolutions",
}


def ratio_label(name: str, min_evolutions: int = MIN_EVOLUTIONS) -> str:
    """
    The label of the ratio `name` (a key of [`RATIO_LABELS`]), as every report prints it.

    Example:
    ```python
    >>> ratio_label("queries_per_deep_instruction")
    'LLM queries per instruction of 3+ evolutions'

    ```
    """
    return RATIO_LABELS[name].format(min_evolutions=min_evolutions)


def cost_per(cost: float, count: int) -> float:
    """
    `cost / count`, `inf` when `count` is 0: the rule of every cost ratio.

    Example:
    ```python
    >>> cost_per(12, 4), cost_per(12, 0)
    (3.0, inf)

    ```
    """
    return cost / count if count else math.inf


def rate(count: int, total: int) -> float:
    """`count / total`, `NaN` when `total` is 0: the rule of every rate (a share of something)."""
    return count / total if total else math.nan


@dataclass(frozen=True)
class CostSummary:
    r"""
    What some episodes spent and bought, and the ratios between them (the properties, one per name of
    [`RATIO_LABELS`]).

    Parameters:
        num_queries (`int`):
            LLM queries spent (every role counted: a rewrite and, unless eliminated, a review per operation).
        num_evolutions (`int`):
            Accepted steps.
        num_instructions (`int`):
            Kept instructions (episodes with at least one evolution).
        num_deep_instructions (`int`):
            Kept instructions of at least `min_evolutions` evolutions.
        min_evolutions (`int`, *optional*, defaults to `3`):
            The depth a deep instruction needs.
        num_rewrites (`int`, *optional*, defaults to `0`):
            Steps that applied an operation (rewriter queries).
        prompt_tokens (`dict[str, int]`), completion_tokens (`dict[str, int]`), *optional*:
            Tokens per role (words for the rules engine); roles that spent none may be left out.
    """

    num_queries: int
    num_evolutions: int
    num_instructions: int
    num_deep_instructions: int
    min_evolutions: int = MIN_EVOLUTIONS
    num_rewrites: int = 0
    prompt_tokens: Mapping[str, int] = field(default_factory=dict)
    completion_tokens: Mapping[str, int] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        """Prompt and completion tokens of every role."""
        return sum(self.prompt_tokens.values()) + sum(self.completion_tokens.values())

    @property
    def queries_per_evolution(self) -> float:
        return cost_per(self.num_queries, self.num_evolutions)

    @property
    def queries_per_instruction(self) -> float:
        return cost_per(self.num_queries, self.num_instructions)

    @property
    def queries_per_deep_instruction(self) -> float:
        return cost_per(self.num_queries, self.num_deep_instructions)

    @property
    def tokens_per_instruction(self) -> float:
        return cost_per(self.num_tokens, self.num_instructions)

    @property
    def tokens_per_deep_instruction(self) -> float:
        return cost_per(self.num_tokens, self.num_deep_instructions)

    @property
    def accepted_rate(self) -> float:
        """Evolutions per rewrite (`NaN` when nothing was rewritten)."""
        return rate(self.num_evolutions, self.num_rewrites)

    def ratios(self) -> dict[str, float]:
        """Every ratio of [`RATIO_LABELS`], by name."""
        return {name: getattr(self, name) for name in RATIO_LABELS}

    def card_ratios(self, names: Iterable[str] = tuple(RATIO_LABELS)) -> dict[str, float]:
        """
        The ratios `names` a card prints, under their labels ([`ratio_label`]): those with something in the
        denominator (an `inf` line tells a reader nothing), and token ratios only when tokens were counted.
        """
        return {
            ratio_label(name, self.min_evolutions): getattr(self, name)
            for name in names
            if math.isfinite(getattr(self, name)) and (self.num_tokens or not name.startswith("tokens_"))
        }

    def tokens_per_role(self) -> dict[str, dict[str, int]]:
        """`{role: {"prompt": ..., "completion": ...}}` for each role that spent tokens (for the cards)."""
        roles = dict.fromkeys([*self.prompt_tokens, *self.completion_tokens])
        tokens = {
            role: {"prompt": self.prompt_tokens.get(role, 0), "completion": self.completion_tokens.get(role, 0)}
            for role in roles
        }
        return {role: counts for role, counts in tokens.items() if counts["prompt"] or counts["completion"]}


def format_number(value: float, digits: int = 2) -> str:
    """`value` with `digits` decimals, `inf` and `nan` spelled so (how reports print an empty case)."""
    return "inf" if math.isinf(value) else "nan" if math.isnan(value) else f"{value:.{digits}f}"
