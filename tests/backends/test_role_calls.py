import queue
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from instrl_trl.backends.endpoint import EndpointGenerator
from instrl_trl.backends.role_calls import Completion, RoleCaller, ServerPools, dispatch_completions, server_request
from instrl_trl.backends.server_load import ClientLoad
from tests.backends.openai_server import OpenAIServer


@pytest.mark.timeout(30)  # before the fix, the main loop waited for the lost answer for ever
@pytest.mark.parametrize(
    ("answers", "message"), [([], "returned 0 answers for 1 item"), ("text", "returned str for 1 item")]
)
def test_a_role_that_answers_wrongly_stops_the_loop_instead_of_losing_the_answer(answers, message):
    completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=2) as pool:
        caller = RoleCaller("rewriter", lambda items: answers, completions, pool)
        caller.submit("an item", tag=7)
        with pytest.raises(RuntimeError, match=message):
            dispatch_completions(completions, handle=lambda completion: None, block=True)


def test_each_item_is_answered_once_with_its_tag():
    completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
    handled = []
    with ThreadPoolExecutor(max_workers=3) as pool:
        caller = RoleCaller("rewriter", lambda items: [item.upper() for item in items], completions, pool)
        for index, item in enumerate(["a", "b", "c", "d"]):
            caller.submit(item, tag=index)
    while len(handled) < 4:
        dispatch_completions(completions, handle=lambda c: handled.append((c.tag, c.result)), block=True)
    assert sorted(handled) == [(0, "A"), (1, "B"), (2, "C"), (3, "D")]


class _EndpointRole:
    """A role whose queries go to an endpoint, as `LLMRewriter` (`ServerPools` finds its `generator`)."""

    def __init__(self, base_url: str):
        self.generator = EndpointGenerator(
            "test-model", base_url=base_url, timeout=0.5, max_retries=20, backoff_base=0.0, max_concurrency=2
        )

    def rewrite(self, items):
        return self.generator.generate(items)


@pytest.mark.timeout(60)
def test_requests_in_flight_stop_retrying_once_the_pools_shut_down():
    # A loop stopped by an error shuts its pools down; its requests to a server that never answers in time used to
    # go on through all their retries (21 attempts here), holding the process alive long after the error
    with OpenAIServer(faults=["slow:2"] * 50) as server:
        role = _EndpointRole(server.base_url)
        completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        pools = ServerPools({"rewriter": role})
        caller = RoleCaller("rewriter", role.rewrite, completions, pools.pool_for(role))
        for index in range(2):
            caller.submit(f"prompt {index}", tag=index)
        deadline = time.monotonic() + 10
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        pools.shutdown()
        answers = [completions.get(timeout=30) for _ in range(2)]
        assert all(answer.result.text is None and answer.result.usage.failed for answer in answers)
        assert len(server.requests) <= 4  # the attempt each had in flight (and at most one more), not 2 x 21


def test_roles_on_one_server_share_one_pool_whatever_their_trailing_slash():
    rewriter, reviewer = _EndpointRole("http://127.0.0.1:9/v1"), _EndpointRole("http://127.0.0.1:9/v1/")
    pools = ServerPools({"rewriter": rewriter, "reviewer": reviewer})
    try:
        assert pools.pool_for(rewriter) is pools.pool_for(reviewer)
        assert pools.total_concurrency == 2  # the server's `max_concurrency`, not twice it
    finally:
        pools.shutdown()


def test_the_loop_waits_only_in_a_blocking_dispatch():
    # A completion 0.3 s away: a blocking dispatch waits for it and counts the wait; one that does not block returns
    # at once and adds nothing
    completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()
    client = ClientLoad()
    dispatch_completions(completions, handle=lambda completion: None, block=False, client=client)
    assert client.waiting_seconds == 0.0
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: time.sleep(0.3) or completions.put(Completion("rewriter", tag=1, result="a")))
        handled = []
        dispatch_completions(completions, handle=handled.append, block=True, client=client)
    assert [completion.tag for completion in handled] == [1]
    assert client.waiting_seconds >= 0.25


def test_server_pools_meter_the_requests_their_threads_send():
    # Each role call runs in the server's pool and its request counts while it is sent: 4 requests of 0.2 s on 2
    # threads. What a call does before its request (a cache's look-up, a retry's backoff: 0.1 s here) counts for
    # nothing
    rewriter = _EndpointRole("http://127.0.0.1:9/v1")
    pools = ServerPools({"rewriter": rewriter})
    completions: queue.SimpleQueue[Completion] = queue.SimpleQueue()

    def call(items):
        time.sleep(0.1)
        with server_request():
            time.sleep(0.2)
        return items

    caller = RoleCaller("rewriter", call, completions, pools.pool_for(rewriter))
    for index in range(4):
        caller.submit(index, tag=index)
    answers = [completions.get(timeout=10) for _ in range(4)]
    pools.shutdown()
    (load,) = pools.loads.values()
    assert sorted(answer.result for answer in answers) == [0, 1, 2, 3]
    assert load.requests == 4 and load.limit == 2
    # 0.8 s of requests; the whole calls would have been 1.2 s. Each thread's second request starts 0.1 s after its
    # first ended: 2 x 0.1 s of 2 x 0.5 s free, a fill of 0.8
    assert 0.8 <= load.busy_seconds < 1.0
    assert load.fill == pytest.approx(0.8, abs=0.05)
