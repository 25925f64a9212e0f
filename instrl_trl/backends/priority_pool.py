"""
A thread pool whose waiting calls run by priority: when several loops share one server's slots (the rollouts a trainer
plays ahead), the loop that is needed first keeps its requests moving instead of queueing behind the others' bursts.
"""

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future


class PriorityPool:
    r"""
    A pool of up to `max_workers` threads, like [`~concurrent.futures.ThreadPoolExecutor`], whose waiting calls start
    lowest `priority` first, and in submission order within a priority. Threads start as calls wait for one.

    Args:
        max_workers (`int`): the most calls running at once.
        thread_name_prefix (`str`, *optional*): names the threads `<prefix>_<n>`.
        initializer (`Callable`, *optional*), initargs (`tuple`, *optional*): called in each thread as it starts.
    """

    def __init__(
        self,
        max_workers: int,
        thread_name_prefix: str = "priority-pool",
        initializer: Callable | None = None,
        initargs: tuple = (),
    ):
        if max_workers < 1:
            raise ValueError(f"`max_workers` must be at least 1, got {max_workers}.")
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._initializer, self._initargs = initializer, initargs
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._shut_down = False

    def submit(self, fn: Callable, /, *args, priority: int = 0, **kwargs) -> Future:
        """Runs `fn(*args, **kwargs)` in a thread of the pool, after the waiting calls of a lower `priority`."""
        future: Future = Future()
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.put((priority, next(self._order), future, fn, args, kwargs))
            if self._idle == 0 and len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1  # this call takes an idle thread (or waits for the next free one)
        return future

    def at(self, priority: int) -> "PoolAtPriority":
        """A view of the pool whose `submit` sends every call at `priority`."""
        return PoolAtPriority(self, priority)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops the threads once the calls running (and, without `cancel_futures`, those waiting) are done."""
        with self._lock:
            self._shut_down = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
                entry[2].cancel()
        for _ in threads:
            self._queue.put((float("inf"), next(self._order), None, None, (), {}))
        if wait:
            for thread in threads:
                thread.join()

    def _work(self) -> None:
        if self._initializer is not None:
            self._initializer(*self._initargs)
        while True:
            _, _, future, fn, args, kwargs = self._queue.get()
            if future is None:
                return
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:  # noqa: BLE001 (delivered through the future, as a thread pool does)
                    future.set_exception(error)
                else:
                    future.set_result(result)
            with self._lock:
                self._idle += 1


class PoolAtPriority:
    """A [`PriorityPool`] seen by one caller: its `submit` sends every call at the same priority."""

    def __init__(self, pool: PriorityPool, priority: int):
        self.pool = pool
        self.priority = priority

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        return self.pool.submit(fn, *args, priority=self.priority, **kwargs)
