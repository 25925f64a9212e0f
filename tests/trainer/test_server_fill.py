import pytest

from instrl_trl.backends.roles import build_role
from instrl_trl.backends.server_load import ClientLoad
from instrl_trl.trainer.server_fill import (
    idle_slot_warnings,
    rollout_waiting_messages,
    rollouts_ahead_waiting_messages,
)
from tests.backends.steady_loads import steady_load


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
    # The PPO trainer's advice names rollouts played ahead, and counts them: 16 episodes and one rollout ahead fill 32
    [message] = idle_slot_warnings(8, roles, rollouts_ahead=1)
    assert "with 1 later rollouts beside it (`rollouts_ahead`)" in message and "at most 16 of its slots" in message
    assert "`rollouts_ahead`: 3 kept" in message
    assert "`rollouts_ahead`" not in idle_slot_warnings(16, roles)[0]  # the instructor has no such setting
    assert idle_slot_warnings(16, roles, rollouts_ahead=1) == []


def test_roles_that_share_a_server_get_one_message_at_its_largest_concurrency(tmp_path):
    roles = {
        "rewriter": build_role("rewriter", endpoint(32), str(tmp_path / "cache.sqlite")),
        "reviewer": build_role("reviewer", endpoint(8), str(tmp_path / "cache.sqlite")),
    }
    [message] = idle_slot_warnings(16, roles)
    assert "the rewriter and reviewer's endpoint http://127.0.0.1:9/v1 takes 32 queries at once" in message


def client() -> ClientLoad:
    """A client that ran 10 s on 2 cores, its loop waiting 4 s for answers."""
    now, cpu = [0.0], [0.0]
    client = ClientLoad(clock=lambda: now[0], cpu_clock=lambda: cpu[0], cores=2)
    client.waiting_seconds, now[0], cpu[0] = 4.0, 10.0, 1.0
    client.stop()
    return client


@pytest.mark.parametrize("cause", ["this process", "a busier server", "ended episodes"])
def test_a_rollout_that_kept_a_server_waiting_names_the_cause(cause):
    loads = {
        "http://a/v1": steady_load(1, loop_works=cause == "this process"),
        "http://b/v1": steady_load(4) if cause == "a busier server" else steady_load(1),
    }
    messages = rollout_waiting_messages(loads, client())
    assert len(messages) == (1 if cause == "a busier server" else 2)
    message = messages[0]
    assert message.startswith(
        "A rollout kept the server waiting on this process: http://a/v1: 16 requests, on average "
    )
    assert client().describe() in message
    if cause == "this process":
        assert "100% of the slot-time left free passed while the loop worked" in message
        assert "This process held the calls back" in message and "`pipelined_rollouts: false`" in message
    else:
        assert "0% of the slot-time left free passed while the loop worked" in message
        assert "Its episodes had no more queries to send" in message and "`generation_batch_size`" in message
        assert ("they waited on a busier server, http://b/v1 (1.00 full)" in message) is (cause == "a busier server")


def test_a_rollout_that_kept_its_servers_busy_says_nothing():
    assert rollout_waiting_messages({"http://a/v1": steady_load(4, loop_works=True)}, client()) == []


def running_client(cores_busy: float) -> ClientLoad:
    """A client still running after 10 s on 2 cores, `cores_busy` of them busy on average."""
    now, cpu = [0.0], [0.0]
    client = ClientLoad(clock=lambda: now[0], cpu_clock=lambda: cpu[0], cores=2)
    now[0], cpu[0] = 10.0, 10.0 * cores_busy
    return client


@pytest.mark.parametrize("cores_busy", [1.8, 0.4])
def test_rollouts_ahead_that_kept_a_server_waiting_name_the_cause_the_cpu_shows(cores_busy):
    # Rollouts ahead share the servers: the cause is read from the process's cores (busy: its compute; to spare: too
    # few queries), not from what one loop was doing
    loads = {"http://a/v1": steady_load(1, loop_works=True), "http://b/v1": steady_load(4)}
    [message] = rollouts_ahead_waiting_messages(loads, running_client(cores_busy))
    assert message.startswith(
        "Rollouts played ahead kept the server waiting on this process: http://a/v1: 16 requests, on average 1.0 of "
        f"its 4 (`max_concurrency`) in flight over 16.0 s (0.25 full); this process kept {cores_busy:.1f} of its 2 "
        "CPU cores busy since the first rollout. "
    )
    compute = "Its own compute held the calls back: PPO's update"
    too_few = "Its rollouts had no more queries to send: play more rollouts ahead (`rollouts_ahead`)"
    assert (compute in message, too_few in message) == ((True, False) if cores_busy > 1.6 else (False, True))


def test_rollouts_ahead_that_kept_their_servers_busy_say_nothing():
    assert rollouts_ahead_waiting_messages({"http://a/v1": steady_load(4)}, running_client(1.8)) == []
