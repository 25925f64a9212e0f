"""The thread pool that lets the rollout PPO needs first keep its requests moving past later rollouts' bursts."""

import threading
import time

import pytest

from instrl_trl.backends.priority_pool import PriorityPool


def test_waiting_calls_start_lowest_priority_first_then_in_submission_order():
    pool = PriorityPool(max_workers=1)
    release, order = threading.Event(), []
    blocker = pool.submit(release.wait)
    futures = [
        pool.at(priority).submit(order.append, name)
        for priority, name in [(2, "a"), (1, "b"), (2, "c"), (1, "d"), (0, "e")]
    ]
    release.set()
    blocker.result(timeout=5)
    for future in futures:
        future.result(timeout=5)
    assert order == ["e", "b", "d", "a", "c"]
    pool.shutdown()


def test_at_most_max_workers_run_at_once_each_thread_initialized():
    initialized, running, most = [], [0], [0]
    lock = threading.Lock()

    def work():
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    pool = PriorityPool(max_workers=3, thread_name_prefix="test-pool", initializer=initialized.append, initargs=(1,))
    names = {future.result(timeout=10) for future in [pool.submit(work) for _ in range(12)]}
    assert most[0] == 3
    assert names <= {"test-pool_0", "test-pool_1", "test-pool_2"} and len(initialized) == len(names) == 3
    pool.shutdown(wait=True)


def test_errors_reach_the_future_and_shutdown_cancels_what_waits():
    pool = PriorityPool(max_workers=1)
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(timeout=5)
    started, release = threading.Event(), threading.Event()

    def hold():
        started.set()
        return release.wait()

    running = pool.submit(hold)
    started.wait(timeout=5)
    waiting = pool.submit(time.sleep, 0)
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    release.set()
    assert running.result(timeout=5) is True
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(time.sleep, 0)
