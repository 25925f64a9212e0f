"""Query accounting: every LLM call of every role is counted here, in one place."""

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from ..runs.atomic import write_json_atomically
from .base import Usage
from .review_statistics import ReviewStatistics


ROLES = ("rewriter", "reviewer", "expert")
QUERIES_FILE = "queries.json"


@dataclass
class RoleUsage:
    r"""
    Totals for one role.

    Parameters:
        queries (`int`): queries asked for (cache hits included); what budgets and the cost reward count.
        cache_hits (`int`): queries answered by the response cache.
        failures (`int`): queries that failed or whose answer could not be parsed.
        prompt_tokens (`int`), completion_tokens (`int`): tokens of the paid queries (cache hits cost none).
        seconds (`float`): wall time spent in the backend.
    """

    queries: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def paid_queries(self) -> int:
        """Queries that reached a backend (not answered by the cache)."""
        return self.queries - self.cache_hits

    @classmethod
    def from_dict(cls, values: Mapping[str, float]) -> "RoleUsage":
        """From a mapping of its fields (missing ones are 0; others, such as `paid_queries`, are ignored)."""
        return cls(**{f.name: f.type(values.get(f.name, 0)) for f in fields(cls)})

    def __add__(self, other: "RoleUsage") -> "RoleUsage":
        return RoleUsage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


class QueryAccounting:
    r"""
    Counts the queries spent per role. One query is one item sent to a role (one rewrite, one review, one answer),
    whatever the backend; the rules engine is counted like an LLM so that budgets and ratios mean the same offline
    and online. LLM backends also report cache hits, failures, tokens and time through [`Usage`].

    Example:
    ```python
    >>> accounting = QueryAccounting()
    >>> accounting.record("rewriter", 3)
    >>> accounting.record("reviewer", 2)
    >>> accounting.total, accounting.as_dict()
    (5, {'rewriter': 3, 'reviewer': 2, 'expert': 0})

    ```
    """

    def __init__(self):
        self._usage = {role: RoleUsage() for role in ROLES}

    def record(self, role: str, num_queries: int, usages: list[Usage | None] | None = None) -> None:
        """Adds `num_queries` queries of `role`, and what their `usages` (if any) report."""
        if role not in ROLES:
            raise ValueError(f"Unknown role {role!r}. Valid roles: {', '.join(ROLES)}.")
        totals = self._usage[role]
        totals.queries += num_queries
        for usage in usages or ():
            if usage is None:
                continue
            totals.cache_hits += int(usage.cached)
            totals.failures += int(usage.failed)
            totals.seconds += usage.seconds
            if not usage.cached:
                totals.prompt_tokens += usage.prompt_tokens
                totals.completion_tokens += usage.completion_tokens

    def add(self, other: "QueryAccounting") -> None:
        """Adds everything `other` counted (e.g. a rollout's own counts, once the run takes the rollout)."""
        self._usage = {role: usage + other.usage(role) for role, usage in self._usage.items()}

    def __getitem__(self, role: str) -> int:
        return self._usage[role].queries

    def usage(self, role: str) -> RoleUsage:
        return self._usage[role]

    @property
    def total(self) -> int:
        return sum(usage.queries for usage in self._usage.values())

    @property
    def total_paid(self) -> int:
        return sum(usage.paid_queries for usage in self._usage.values())

    def as_dict(self) -> dict[str, int]:
        """Queries per role."""
        return {role: usage.queries for role, usage in self._usage.items()}

    def details(self) -> dict[str, dict[str, float]]:
        """Everything counted, per role (what `queries.json` holds)."""
        return {role: {**asdict(usage), "paid_queries": usage.paid_queries} for role, usage in self._usage.items()}

    def state_dict(self) -> dict[str, dict]:
        return {role: asdict(usage) for role, usage in self._usage.items()}

    def load_state_dict(self, state: dict) -> None:
        # Older checkpoints stored one count per role
        self._usage = {
            role: RoleUsage(**state[role])
            if isinstance(state.get(role), dict)
            else RoleUsage(queries=int(state.get(role, 0)))
            for role in ROLES
        }


def write_queries_file(
    path: str,
    per_role: Mapping[str, Mapping[str, float]],
    add_to_existing: bool = False,
    reviewer: ReviewStatistics | None = None,
) -> dict[str, object]:
    r"""
    Writes what a stage spent, in the one format of every `queries*.json` file:
    `{"total": ..., "paid_queries": ..., "per_role": {role: {"queries", "cache_hits", "failures", "prompt_tokens",
    "completion_tokens", "seconds", "paid_queries"}}}`, with every role of [`ROLES`], and, for an LLM reviewer,
    `"reviewer"`: what the judge did ([`ReviewStatistics.summary`]: failed verdicts and their share, mean and standard
    deviation of P(information gain), agreement with the rules reviewer on the same pairs).

    Args:
        path (`str`): the file to write.
        per_role (`Mapping[str, Mapping[str, float]]`): the [`RoleUsage`] fields per role, e.g.
            [`QueryAccounting.details`] or the same summed over processes.
        add_to_existing (`bool`, *optional*, defaults to `False`): add to the counts already in `path` (a resumed
            run that keeps one running total) instead of replacing them.
        reviewer ([`ReviewStatistics`] or `None`, *optional*, defaults to `None`): the LLM reviewer's sums (over
            processes); `None` for a reviewer that gives no probability (the rules engine).

    Returns:
        `dict`: what was written.
    """
    usage = {role: RoleUsage.from_dict(per_role.get(role, {})) for role in ROLES}
    if add_to_existing and os.path.exists(path):
        previous = read_queries_file(path)
        usage = {role: usage[role] + previous[role] for role in ROLES}
        with open(path) as f:
            previous_reviewer = json.load(f).get("reviewer")
        if previous_reviewer is not None:
            reviewer = ReviewStatistics.from_dict(previous_reviewer) + (reviewer or ReviewStatistics())
    content = {
        "total": sum(totals.queries for totals in usage.values()),
        "paid_queries": sum(totals.paid_queries for totals in usage.values()),
        "per_role": {role: {**asdict(totals), "paid_queries": totals.paid_queries} for role, totals in usage.items()},
    }
    if reviewer is not None:
        content["reviewer"] = reviewer.summary()
    write_json_atomically(path, content)
    return content


def read_queries_file(path: str) -> dict[str, RoleUsage]:
    """The per-role usage of a file written by [`write_queries_file`]."""
    with open(path) as f:
        content = json.load(f)
    if "per_role" not in content:
        raise ValueError(f"{path} is not a queries file written by `write_queries_file` (no `per_role` key).")
    return {role: RoleUsage.from_dict(content["per_role"].get(role, {})) for role in ROLES}
