import doctest

import pytest

from instrl_trl.backends import failure_budget
from instrl_trl.backends.accounting import QueryAccounting
from instrl_trl.backends.base import Usage
from instrl_trl.backends.failure_budget import FailureBudget, RoleFailureError, describe_backend
from instrl_trl.backends.roles import build_role


def test_doctest():
    assert doctest.testmod(failure_budget, optionflags=doctest.ELLIPSIS).failed == 0


def test_only_a_batch_past_the_budget_stops_and_counts_start_at_the_batch(tmp_path):
    accounting = QueryAccounting()
    rewriter = build_role("rewriter", {"backend": "endpoint", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
                          str(tmp_path / "cache.sqlite"))  # fmt: skip
    # As the endpoint backend words it: what went wrong, then what to check for that kind of failure
    rewriter.generator.generator.last_error = "status 500 (boom). The server kept failing"
    budget = FailureBudget(accounting.details, {"rewriter": rewriter})
    accounting.record("rewriter", 3, [Usage(failed=True)] * 3)
    budget.start_batch()  # failures of earlier batches do not count
    accounting.record("rewriter", 4, [Usage(failed=True)] * 3 + [Usage()])
    budget.check_batch()  # 3 of 4: under the default budget (every query of the batch)
    accounting.record("reviewer", 2)  # the rules engine never fails

    budget.start_batch()
    accounting.record("rewriter", 2, [Usage(failed=True)] * 2)
    with pytest.raises(RoleFailureError) as info:
        budget.check_batch()
    assert str(info.value) == (
        "The rewriter failed 2 of its 2 queries in this batch (`max_failure_fraction` is 1.0); its backend is "
        "http://127.0.0.1:9/v1, last error: status 500 (boom). The server kept failing."
    )
    # Without a last error, the generic check
    rewriter.generator.generator.last_error = None
    with pytest.raises(RoleFailureError, match=r"9/v1\. Check that it is running and reachable\.$"):
        budget.check_batch()


def test_a_lower_budget_stops_sooner_and_the_rules_engine_is_named():
    accounting = QueryAccounting()
    budget = FailureBudget(accounting.details, {"expert": build_role("expert", None)}, max_failure_fraction=0.25)
    accounting.record("expert", 4, [Usage(failed=True)] + [Usage()] * 3)
    with pytest.raises(RoleFailureError, match="expert failed 1 of its 4 queries .* the RulesExpert"):
        budget.check_batch()
    with pytest.raises(ValueError, match="max_failure_fraction"):
        FailureBudget(accounting.details, {}, max_failure_fraction=0.0)
    assert describe_backend(None) == ("not known here", None)
