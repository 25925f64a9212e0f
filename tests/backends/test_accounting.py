import pytest

from instrl_trl.backends.accounting import ROLES, QueryAccounting


def test_new_accounting_counts_zero_for_every_role():
    accounting = QueryAccounting()
    assert accounting.total == 0
    assert accounting.as_dict() == dict.fromkeys(ROLES, 0)
    assert list(accounting.as_dict()) == ["rewriter", "reviewer", "expert"]


def test_record_adds_up_per_role_and_in_total():
    accounting = QueryAccounting()
    accounting.record("rewriter", 3)
    accounting.record("reviewer", 2)
    accounting.record("rewriter", 4)
    accounting.record("expert", 0)
    assert accounting["rewriter"] == 7
    assert accounting["reviewer"] == 2
    assert accounting["expert"] == 0
    assert accounting.total == 9
    assert accounting.as_dict() == {"rewriter": 7, "reviewer": 2, "expert": 0}


def test_as_dict_is_a_copy():
    accounting = QueryAccounting()
    accounting.record("reviewer", 1)
    snapshot = accounting.as_dict()
    snapshot["reviewer"] = 100
    assert accounting["reviewer"] == 1


def test_state_dict_round_trip():
    accounting = QueryAccounting()
    accounting.record("rewriter", 5)
    accounting.record("reviewer", 4)
    accounting.record("expert", 2)
    restored = QueryAccounting()
    restored.record("rewriter", 99)  # overwritten, not added to
    restored.load_state_dict(accounting.state_dict())
    assert restored.as_dict() == accounting.as_dict() == {"rewriter": 5, "reviewer": 4, "expert": 2}
    assert restored.total == 11
    restored.record("rewriter", 1)  # counting goes on from the restored values
    assert restored["rewriter"] == 6


def test_load_state_dict_fills_missing_roles_with_zero():
    accounting = QueryAccounting()
    accounting.record("expert", 3)
    accounting.load_state_dict({"rewriter": 2})
    assert accounting.as_dict() == {"rewriter": 2, "reviewer": 0, "expert": 0}


def test_unknown_role_raises():
    accounting = QueryAccounting()
    with pytest.raises(ValueError, match="'judge'.*rewriter, reviewer, expert"):
        accounting.record("judge", 1)
    assert accounting.total == 0
