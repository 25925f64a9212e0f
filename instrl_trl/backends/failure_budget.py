"""
Failure budgets per role: a stage whose LLM backend keeps failing stops, loudly, instead of finishing "successfully"
with nothing to show. A backend that fails one query after its retries is a bad moment; one that fails every query of
a batch is down (a dead port, a wrong URL, a server answering `500` to everything).
"""

from collections.abc import Callable, Mapping

from .accounting import ROLES


class RoleFailureError(RuntimeError):
    """A role's queries failed past the failure budget."""


def describe_backend(role) -> tuple[str, str | None]:
    """
    Where a role's queries go (the endpoint, the model, or the rules engine) and the last error its backend saw, if
    it keeps one (the endpoint and transformers backends do), which ends with what to check.
    """
    if role is None:
        return "not known here", None
    generator = getattr(role, "generator", None)
    # Through the wrappers (the response cache) to the generator that sends the queries
    while getattr(generator, "generator", None) is not None:
        generator = generator.generator
    if generator is None:
        return f"the {type(role).__name__}", None
    where = getattr(generator, "endpoint", None) or f"{generator.backend} model {generator.model_name!r}"
    return where, getattr(generator, "last_error", None)


class FailureBudget:
    r"""
    Checks, after each batch, that no role failed too many of the batch's queries: a failed query is one that got no
    usable answer after the backend's retries (`Usage.failed`, counted by
    [`~instrl_trl.backends.accounting.QueryAccounting`]).

    Args:
        usage (`Callable[[], Mapping[str, Mapping[str, float]]]`):
            The stage's running totals per role, with at least `queries` and `failures`: e.g.
            [`~instrl_trl.backends.accounting.QueryAccounting.details`], or the totals over all processes.
        roles (`dict[str, object]`):
            The role objects by name (`rewriter`, `reviewer`, `expert`), to name their endpoint in the error.
        max_failure_fraction (`float`, *optional*, defaults to `1.0`):
            The batch fails when at least this fraction of one role's queries in it failed; `1.0` stops only when
            every query of the batch failed.

    Example:
    ```python
    >>> from instrl_trl.backends.accounting import QueryAccounting
    >>> from instrl_trl.backends.base import Usage
    >>> accounting = QueryAccounting()
    >>> budget = FailureBudget(accounting.details, {}, max_failure_fraction=0.5)
    >>> budget.start_batch()
    >>> accounting.record("expert", 2, [Usage(failed=True), Usage()])
    >>> budget.check_batch()
    Traceback (most recent call last):
    ...
    instrl_trl.backends.failure_budget.RoleFailureError: The expert failed 1 of its 2 queries in this batch (...

    ```
    """

    def __init__(
        self,
        usage: Callable[[], Mapping[str, Mapping[str, float]]],
        roles: dict,
        max_failure_fraction: float = 1.0,
    ):
        if not 0.0 < max_failure_fraction <= 1.0:
            raise ValueError(f"`max_failure_fraction` must be in (0, 1], got {max_failure_fraction}.")
        self.usage = usage
        self.roles = roles
        self.max_failure_fraction = max_failure_fraction
        self._start = self._snapshot()

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        usage = self.usage()
        return {
            role: (int(usage[role]["failures"]), int(usage[role]["queries"])) if role in usage else (0, 0)
            for role in ROLES
        }

    def start_batch(self) -> None:
        self._start = self._snapshot()

    def batch_failures(self) -> dict[str, tuple[int, int]]:
        """`(failed, queries)` per role since [`~FailureBudget.start_batch`]."""
        now = self._snapshot()
        return {role: (now[role][0] - self._start[role][0], now[role][1] - self._start[role][1]) for role in ROLES}

    def check_batch(self) -> None:
        """Raises a [`RoleFailureError`] naming the role, its endpoint and its last error if it failed too often."""
        for role, (failed, queries) in self.batch_failures().items():
            if failed and failed >= self.max_failure_fraction * queries:
                where, last_error = describe_backend(self.roles.get(role))
                raise RoleFailureError(
                    f"The {role} failed {failed} of its {queries} queries in this batch (`max_failure_fraction` is "
                    f"{self.max_failure_fraction}); its backend is {where}"
                    # A backend's last error ends with what to check for its kind of failure
                    f"{f', last error: {last_error}.' if last_error else '. Check that it is running and reachable.'}"
                )
