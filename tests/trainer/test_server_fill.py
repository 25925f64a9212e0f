from instrl_trl.backends.roles import build_role
from instrl_trl.trainer.server_fill import idle_slot_warnings


def endpoint(max_concurrency: int, port: int = 9) -> dict:
    return {
        "backend": "endpoint",
        "model": "m",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "max_concurrency": max_concurrency,
    }


def test_only_an_endpoint_that_takes_more_than_the_rollouts_episodes_is_named(tmp_path):
    roles = {
        "rewriter": build_role("rewriter", endpoint(32), str(tmp_path / "cache.sqlite")),
        "reviewer": build_role("reviewer", endpoint(8, port=10), str(tmp_path / "cache.sqlite")),
        "expert": build_role("expert", None),  # the rules engine: answered here, no slots
    }
    [message] = idle_slot_warnings(16, roles)
    assert message.startswith("A rollout plays 16 episodes per process")
    assert "the rewriter's endpoint http://127.0.0.1:9/v1 takes 32 queries at once" in message
    assert "at most 16 of its slots are ever busy" in message and "lower `max_concurrency`" in message
    assert len(idle_slot_warnings(4, roles)) == 2  # now the reviewer's 8 slots cannot fill either
    assert idle_slot_warnings(32, roles) == []


def test_roles_that_share_a_server_get_one_message_at_its_largest_concurrency(tmp_path):
    roles = {
        "rewriter": build_role("rewriter", endpoint(32), str(tmp_path / "cache.sqlite")),
        "reviewer": build_role("reviewer", endpoint(8), str(tmp_path / "cache.sqlite")),
    }
    [message] = idle_slot_warnings(16, roles)
    assert "the rewriter and reviewer's endpoint http://127.0.0.1:9/v1 takes 32 queries at once" in message
