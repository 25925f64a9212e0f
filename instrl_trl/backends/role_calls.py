"""
How a pipelined loop (the generation stage, the trainer's rollouts) calls a role: one item at a time, each answer
delivered to one queue as soon as it is known.

A role whose backend is an HTTP endpoint is called from a thread pool, one request per item, so that many episodes'
queries are in flight at once; roles that send to the same server share one pool of that server's `max_concurrency`
threads, which bounds the requests in flight there. Each HTTP request a pool thread sends counts in its server's
`ServerLoad` (how full the client kept it), and the process around them in a `ClientLoad` (whether it kept up; both
in `server_load.py`). Any other role (the rules engine, a local transformers model) is called in the main thread, with
every item submitted since its last call in one batch: the rules engine is cheap, and a local model answers a batch
in one forward pass.

```
 main thread                       server "http://h:8000/v1" (one pool, max_concurrency threads)
 submit(item) --------------------> role.rewrite([item]) ... ----+
 flush(): role.review([a, b, c])                                 |
        |                                                        v
        +--------------------> completions queue <---------------+
```
"""

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .priority_pool import PriorityPool
from .server_load import ClientLoad, ServerLoad


@dataclass
class Completion:
    r"""
    One item's answer, as the main loop reads it from the queue.

    Parameters:
        role (`str`): the role that answered.
        tag (`Any`): what the caller attached to the item, to find its episode again.
        result (`Any`): the role's answer for the item (`None` when `error` is set).
        error (`BaseException` or `None`): what the call raised (a fatal error: auth, configuration, a bug).
    """

    role: str
    tag: Any
    result: Any = None
    error: BaseException | None = None


def dispatch_completions(
    completions: "queue.SimpleQueue[Completion]",
    handle: Callable[[Completion], None],
    block: bool,
    client: ClientLoad | None = None,
) -> None:
    """
    Hands every completion waiting in `completions` to `handle`, in arrival order; with `block`, waits for the first
    one (an hour at most), a wait that counts in `client`'s `waiting_seconds`. A completion carrying an error raises
    it (a fatal error: auth, configuration, a bug).
    """
    try:
        if not block:
            completion = completions.get_nowait()
        elif client is None:
            completion = completions.get(timeout=3600)
        else:
            with client.waiting():
                completion = completions.get(timeout=3600)
    except queue.Empty:
        return
    while True:
        if completion.error is not None:
            raise completion.error
        handle(completion)
        try:
            completion = completions.get_nowait()
        except queue.Empty:
            return


# What a pool thread knows of its pool: the event that tells its requests to stop retrying (see `ServerPools`)
_pool_thread = threading.local()


def _enter_pool(stop: threading.Event, load: ServerLoad) -> None:
    _pool_thread.stop = stop
    _pool_thread.load = load


def pool_stop_event() -> threading.Event | None:
    """
    In a thread of a [`ServerPools`] pool, the event set when the pools shut down: a request still in flight then
    stops retrying (its answer has no one left to read it). `None` in any other thread.
    """
    return getattr(_pool_thread, "stop", None)


@contextmanager
def server_request() -> Iterator[None]:
    """
    Around one HTTP request to a server: in a thread of a [`ServerPools`] pool, the request counts in flight in that
    server's [`ServerLoad`] for as long as the block runs (a response cache's hit or a retry's backoff never enters
    one). Anywhere else it counts nowhere.
    """
    load = getattr(_pool_thread, "load", None)
    if load is None:
        yield
        return
    load.start()
    try:
        yield
    finally:
        load.end()


def endpoint_of(role) -> tuple[str, int] | None:
    """
    `(endpoint, max_concurrency)` of a role whose queries go to an HTTP endpoint (through any wrapper, such as the
    response cache), `None` for a role answered in this process (the rules engine, a transformers model).
    """
    generator = getattr(role, "generator", None)
    while getattr(generator, "generator", None) is not None:
        generator = generator.generator
    limit = getattr(generator, "max_concurrency", None)
    endpoint = getattr(generator, "endpoint", None)
    if limit is None or endpoint is None:
        return None
    return str(endpoint).rstrip("/"), int(limit)  # `http://h:8000/v1/` is the server of `http://h:8000/v1`


def servers_of(roles: dict[str, object]) -> dict[str, tuple[int, list[str]]]:
    """
    The HTTP servers `roles` (by name) send to: each endpoint's `max_concurrency` (the largest among the roles that
    share it) and those roles' names, in order. Local roles are left out.
    """
    servers: dict[str, tuple[int, list[str]]] = {}
    for name, role in roles.items():
        found = endpoint_of(role)
        if found is not None:
            limit, names = servers.get(found[0], (0, []))
            servers[found[0]] = (max(limit, found[1]), [*names, name])
    return servers


class ServerPools:
    r"""
    One thread pool per server, shared by the roles that send to it: `max_workers` is the largest `max_concurrency`
    among them, so that at most that many of this process's requests are in flight at the server. `loads` holds each
    server's [`ServerLoad`]: how many were, over time; `client`, the process's [`ClientLoad`] from the pools' creation
    to their shutdown (pass it to [`dispatch_completions`]). With `prioritized`, each pool is a
    [`~instrl_trl.backends.priority_pool.PriorityPool`]: several loops sharing the pools send at a priority each
    ([`pool_for`]), and the lowest's requests go first.
    """

    def __init__(self, roles: dict[str, object], prioritized: bool = False):
        limits = {endpoint: limit for endpoint, (limit, _) in servers_of(roles).items()}
        self.limits = limits
        self.loads = {endpoint: ServerLoad(limit) for endpoint, limit in limits.items()}
        self.client = ClientLoad(loads=list(self.loads.values()))
        self._stop = threading.Event()
        pool_class = PriorityPool if prioritized else ThreadPoolExecutor
        self._pools = {
            endpoint: pool_class(
                max_workers=limit,
                thread_name_prefix="role-call",
                initializer=_enter_pool,
                initargs=(self._stop, self.loads[endpoint]),
            )
            for endpoint, limit in limits.items()
        }

    def pool_for(self, role, priority: int | None = None):
        """
        The pool of `role`'s server (`None` for a local role); with `priority` (prioritized pools only), a view of it
        that sends at that priority.
        """
        found = endpoint_of(role)
        if found is None:
            return None
        pool = self._pools[found[0]]
        if priority is None:
            return pool
        if not isinstance(pool, PriorityPool):
            raise TypeError("A priority needs prioritized pools: `ServerPools(roles, prioritized=True)`.")
        return pool.at(priority)

    @property
    def total_concurrency(self) -> int:
        """Requests this process may have in flight over all servers at once."""
        return sum(self.limits.values())

    def shutdown(self) -> None:
        """
        Stops the pools: requests not yet sent are cancelled, and those in flight (a loop stopped by an error leaves
        some) end with their current attempt instead of retrying, so that the process can exit.
        """
        self._stop.set()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self.client.stop()


class RoleCaller:
    r"""
    Calls one role item by item. `call(items)` is the role's batch method (e.g. `rewriter.rewrite`); each item's
    answer goes to `completions` as a [`Completion`] with the `tag` it was submitted with.

    Args:
        role (`str`): the role's name, put in each [`Completion`].
        call (`Callable[[list], list]`): batch in, one answer per item out, in order.
        completions (`queue.SimpleQueue`): where answers go.
        pool (`ThreadPoolExecutor`, *optional*): the server's pool; without one, items wait for [`~RoleCaller.flush`].
    """

    def __init__(
        self,
        role: str,
        call: Callable[[list], list],
        completions: queue.SimpleQueue,
        pool: ThreadPoolExecutor | None = None,
    ):
        self.role = role
        self.call = call
        self.completions = completions
        self.pool = pool
        self._waiting: list[tuple[Any, Any]] = []

    @property
    def concurrent(self) -> bool:
        return self.pool is not None

    def submit(self, item, tag) -> None:
        """Sends `item` now (a concurrent role) or at the next [`~RoleCaller.flush`]."""
        if self.pool is None:
            self._waiting.append((item, tag))
            return
        future = self.pool.submit(self.call, [item])
        future.add_done_callback(lambda done, tag=tag: self.completions.put(self._completion(done, tag)))

    def _completion(self, future: Future, tag) -> Completion:
        """The item's [`Completion`]; whatever goes wrong is its `error`, so that every item's answer is delivered."""
        if future.cancelled():
            return Completion(self.role, tag, error=RuntimeError(f"The {self.role} query was cancelled."))
        error = future.exception()
        if error is not None:
            return Completion(self.role, tag, error=error)
        try:
            [result] = self._answers(future.result(), 1)
        except RuntimeError as error:
            # Raised in the callback, it would be logged and dropped, and the main loop would wait for it for ever
            return Completion(self.role, tag, error=error)
        return Completion(self.role, tag, result=result)

    def _answers(self, results, num_items: int) -> list:
        """`results` if it holds one answer per item; raises a `RuntimeError` naming the role otherwise."""
        if not isinstance(results, list | tuple) or len(results) != num_items:
            answered = f"{len(results)} answers" if isinstance(results, list | tuple) else type(results).__name__
            raise RuntimeError(f"The {self.role} returned {answered} for {num_items} items.")
        return list(results)

    def flush(self) -> bool:
        """Calls the role on every waiting item, in one batch; returns whether there were any."""
        if not self._waiting:
            return False
        waiting, self._waiting = self._waiting, []
        results = self._answers(self.call([item for item, _ in waiting]), len(waiting))
        for (_, tag), result in zip(waiting, results, strict=True):
            self.completions.put(Completion(self.role, tag, result=result))
        return True


class BatchingWorker(RoleCaller):
    r"""
    A [`RoleCaller`] for CPU work that releases the GIL (e.g. a sentence-embedding forward pass): one background
    thread takes every item waiting, calls `call(items)` on them as one batch, and delivers the answers, so that the
    work overlaps the main loop and the servers' waiting instead of stalling them. [`~RoleCaller.flush`] does nothing.
    """

    def __init__(self, role: str, call: Callable[[list], list], completions: queue.SimpleQueue, max_batch: int = 64):
        super().__init__(role, call, completions)
        self.max_batch = max_batch
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=f"role-call-{role}", daemon=True)
        self._thread.start()

    @property
    def concurrent(self) -> bool:
        return True

    def submit(self, item, tag) -> None:
        self._inbox.put((item, tag))

    def flush(self) -> bool:
        return False

    def close(self) -> None:
        """Stops the thread once the items already submitted are done."""
        self._inbox.put(None)

    def _work(self) -> None:
        while True:
            batch = [self._inbox.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            batch = [entry for entry in batch if entry is not None]
            if batch:
                try:
                    results = self._answers(self.call([item for item, _ in batch]), len(batch))
                    for (_, tag), result in zip(batch, results, strict=True):
                        self.completions.put(Completion(self.role, tag, result=result))
                except Exception as error:  # noqa: BLE001 (delivered to the main loop, which raises it)
                    self.completions.put(Completion(self.role, batch[0][1], error=error))
            if stop:
                return
