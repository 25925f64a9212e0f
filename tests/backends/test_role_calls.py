import queue
from concurrent.futures import ThreadPoolExecutor

import pytest

from instrl_trl.backends.role_calls import Completion, RoleCaller, dispatch_completions


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
