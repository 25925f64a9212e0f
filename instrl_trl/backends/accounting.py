"""Query accounting: every LLM call of every role is counted here, in one place."""

from collections import Counter


ROLES = ("rewriter", "reviewer", "expert")


class QueryAccounting:
    r"""
    Counts the queries spent per role. One query is one item sent to a role's backend (one rewrite, one review, one
    answer), whatever the backend; the rules engine is counted like an LLM so that budgets and ratios mean the same
    offline and online.

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
        self._queries = Counter(dict.fromkeys(ROLES, 0))

    def record(self, role: str, num_queries: int) -> None:
        if role not in ROLES:
            raise ValueError(f"Unknown role {role!r}. Valid roles: {', '.join(ROLES)}.")
        self._queries[role] += num_queries

    def __getitem__(self, role: str) -> int:
        return self._queries[role]

    @property
    def total(self) -> int:
        return sum(self._queries.values())

    def as_dict(self) -> dict[str, int]:
        return {role: self._queries[role] for role in ROLES}

    def state_dict(self) -> dict[str, int]:
        return self.as_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._queries = Counter({role: int(state.get(role, 0)) for role in ROLES})
