"""
How full a client keeps an inference server, and why not fuller: `ServerLoad` integrates one server's requests in
flight over time (its `fill` of `max_concurrency`), `ClientLoad` meters the process while a pipelined loop runs (its
CPU, the loop's waiting for answers), and a server's free slot-time is split by what the loop was doing: free while
the loop worked, the client held requests back (`held_back`); free while it waited, it had nothing more to send. The
stages' warnings (`servers_kept_waiting`) name the cause from that split.
"""

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


# A server kept less than this full on average, over at least `MIN_REQUESTS_PER_SLOT` requests per slot (so that the
# first and last requests' ramps are a small part), waited on the client: the run warns
LOW_SERVER_FILL = 0.5
MIN_REQUESTS_PER_SLOT = 4
# A server whose free slot-time passed at least this much while the loop worked (see `ServerLoad.held_back`) waited on
# the client's own work, not on a lack of work to send
CLIENT_HELD_BACK = 0.5
# A process whose threads kept this share of its cores busy had no CPU to spare for work beside its loop
BUSY_CORES = 0.8


class ServerLoad:
    r"""
    How many of this process's HTTP requests were in flight at one server, over time, as the client saw them: a request
    counts from the moment it is sent to its answer (or its failure), each attempt of a retried query on its own; a
    response cache's hit and a retry's backoff reach no server and do not count (see
    [`~instrl_trl.backends.role_calls.server_request`]). With `max_concurrency` set to what the server decodes at
    once, `fill` is how busy the client kept it.

    The slots left free are split by what the loop whose queries send the requests was doing (see [`ClientLoad`]):
    free while it waited for answers, the loop had nothing more to send (episodes waiting on another server, or
    ended); free while it worked (a policy's forward pass, a local role's batch), the client held requests back.
    `held_back` is that second share.

    Args:
        limit (`int`): the server's `max_concurrency`.
        clock (`Callable[[], float]`, *optional*, defaults to `time.monotonic`): the time, in seconds.
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.requests = 0  # requests sent
        self.busy_seconds = 0.0  # the integral of the requests in flight over time
        self.first_start: float | None = None
        self.last_end: float | None = None
        self._clock = clock
        self._in_flight = 0
        self._last_change = 0.0
        self._loop_waiting = False
        self._free_while_working = 0.0  # the integral of the free slots over the time the loop worked
        self._free_while_working_at_last_end = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        """A request is sent."""
        with self._lock:
            if self.first_start is None:
                self.first_start = self._last_change = self._clock()
            self._advance()
            self._in_flight += 1
            self.requests += 1

    def end(self) -> None:
        """A request ended (answered or failed)."""
        with self._lock:
            self.last_end = self._advance()
            self._in_flight -= 1
            self._free_while_working_at_last_end = self._free_while_working

    def loop_waits(self, waiting: bool) -> None:
        """The loop whose queries send the requests starts (`True`) or stops waiting for answers."""
        with self._lock:
            self._advance()
            self._loop_waiting = waiting

    def _advance(self) -> float:
        now = self._clock()
        if self.first_start is not None:
            elapsed = now - self._last_change
            self.busy_seconds += self._in_flight * elapsed
            if not self._loop_waiting:
                self._free_while_working += max(self.limit - self._in_flight, 0) * elapsed
            self._last_change = now
        return now

    @property
    def seconds(self) -> float:
        """From the first call's start to the last call's end (0 before any call ended)."""
        if self.first_start is None or self.last_end is None:
            return 0.0
        return self.last_end - self.first_start

    @property
    def fill(self) -> float | None:
        """The mean requests in flight over [`seconds`], over `limit`; `None` before any request ended."""
        return self.busy_seconds / (self.limit * self.seconds) if self.seconds > 0 else None

    @property
    def held_back(self) -> float | None:
        """
        Of the slot-seconds left free over [`seconds`], the share that passed while the loop worked instead of waiting
        for answers: requests the client held back. `None` before any request ended or with no slot ever free.
        """
        free = self.limit * self.seconds - self.busy_seconds
        if self.seconds <= 0 or free <= 1e-9 * self.limit * self.seconds:  # no slot free, up to float rounding
            return None
        return min(self._free_while_working_at_last_end / free, 1.0)

    def describe(self) -> str:
        """One line: the requests, the mean in flight of `limit`, over how long, and the fill."""
        if self.fill is None:
            return f"{self.requests} requests, none answered"
        in_flight = self.fill * self.limit
        return (
            f"{self.requests} requests, on average {in_flight:.1f} of its {self.limit} (`max_concurrency`) in flight "
            f"over {self.seconds:.1f} s ({self.fill:.2f} full)"
        )


def least_full(loads: dict[str, ServerLoad]) -> ServerLoad | None:
    """The least full server of `loads`, among those that answered; `None` if none did."""
    answered = [load for load in loads.values() if load.fill is not None]
    return min(answered, key=lambda load: load.fill) if answered else None


def least_fill(loads: dict[str, ServerLoad]) -> float | None:
    """The fill of the least full server of `loads`, among those that answered; `None` if none did."""
    load = least_full(loads)
    return None if load is None else load.fill


def client_held_back(load: ServerLoad) -> bool:
    """Whether most of the slot-time `load` left free passed while the loop worked (`CLIENT_HELD_BACK`)."""
    return load.held_back is not None and load.held_back >= CLIENT_HELD_BACK


def servers_kept_waiting(loads: dict[str, ServerLoad]) -> dict[str, ServerLoad]:
    """
    The servers of `loads` that a run long enough to tell (`MIN_REQUESTS_PER_SLOT` requests per slot) kept less than
    `LOW_SERVER_FILL` full: they waited on this process, and a server paid by the hour idled.
    """
    return {
        endpoint: load
        for endpoint, load in loads.items()
        if load.fill is not None
        and load.fill < LOW_SERVER_FILL
        and load.requests >= MIN_REQUESTS_PER_SLOT * load.limit
    }


def busier_servers(loads: dict[str, ServerLoad], endpoint: str) -> list[str]:
    """
    The servers of `loads` other than `endpoint` that were not kept waiting, as `"http://h:8000/v1 (0.97 full)"`: what
    the episodes of a run that kept `endpoint` waiting may have queued for instead.
    """
    waiting = servers_kept_waiting(loads)
    return [
        f"{other} ({load.fill:.2f} full)"
        for other, load in loads.items()
        if other != endpoint and other not in waiting and load.fill is not None
    ]


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class ClientLoad:
    r"""
    What the process did while a pipelined loop ran, to tell why a server waited: the CPU its threads used (all of
    them: the loop, the pools, a scoring or embedding thread, the forward passes' own threads) and how long the loop
    waited for answers (in [`~instrl_trl.backends.role_calls.dispatch_completions`]), which it tells its servers'
    loads so that they split their free slots by it (see [`ServerLoad.held_back`]).

    Args:
        clock (`Callable[[], float]`, *optional*, defaults to `time.monotonic`): the time, in seconds.
        cpu_clock (`Callable[[], float]`, *optional*, defaults to `time.process_time`): the CPU seconds of the process.
        cores (`int`, *optional*): the cores the process may use; defaults to [`available_cores`].
        loads (`list[ServerLoad]`, *optional*): the servers the loop sends to, told when it waits (see
            [`ServerLoad.held_back`]).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
        cores: int | None = None,
        loads: list[ServerLoad] | None = None,
    ):
        self.cores = cores if cores is not None else available_cores()
        self.loads = list(loads or [])
        self.waiting_seconds = 0.0
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._stopped = False
        self._start = clock()
        self._cpu_start = cpu_clock()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """A context in which the loop waits for answers: it counts in `waiting_seconds`, and its loads know."""
        for load in self.loads:
            load.loop_waits(True)
        start = self._clock()
        try:
            yield
        finally:
            self.waiting_seconds += self._clock() - start
            for load in self.loads:
                load.loop_waits(False)

    def stop(self) -> None:
        """The loop ended: fixes `seconds` and `cpu_seconds` (a later call changes nothing)."""
        if self._stopped:
            return
        self._stopped = True
        self.seconds = self._clock() - self._start
        self.cpu_seconds = self._cpu_clock() - self._cpu_start

    @property
    def cores_busy(self) -> float:
        """The process's CPU seconds per second (2.0: two cores busy all along); 0 before [`stop`]."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0

    def cores_busy_so_far(self) -> float:
        """[`cores_busy`] of a loop that still runs: from the start to now (to [`stop`] once stopped)."""
        if self._stopped:
            return self.cores_busy
        seconds = self._clock() - self._start
        return (self._cpu_clock() - self._cpu_start) / seconds if seconds > 0 else 0.0

    @property
    def waiting_share(self) -> float:
        """The share of the time the loop waited for answers; 1 before [`stop`]."""
        return self.waiting_seconds / self.seconds if self.seconds > 0 else 1.0

    def describe(self) -> str:
        """One clause: the CPU cores the process kept busy and how long its loop waited for answers."""
        return (
            f"this process kept {self.cores_busy:.1f} of its {self.cores} CPU cores busy, and its loop waited for "
            f"answers {self.waiting_share:.0%} of the time"
        )


def waiting_messages(
    loads: dict[str, ServerLoad], client: ClientLoad, who: str, held_back_cause: str, no_work_cause: str
) -> list[str]:
    """
    One message per server of `loads` that `who` (the run, e.g. `"Generation"`) kept waiting (see
    [`servers_kept_waiting`]), with the cause its free slots point at: free while the loop worked, this process held
    the calls back (`held_back_cause` says what in it does); free while the loop waited for answers, its episodes had
    nothing more to send (a busier server, named, or `no_work_cause`).
    """
    messages = []
    for endpoint, load in servers_kept_waiting(loads).items():
        message = (
            f"{who} kept the server waiting on this process: {endpoint}: {load.describe()}; {client.describe()}; "
            f"{load.held_back or 0:.0%} of the slot-time left free passed while the loop worked. "
        )
        if client_held_back(load):
            message += f"This process held the calls back: {held_back_cause}"
        else:
            others = busier_servers(loads, endpoint)
            busier = f"they waited on a busier server, {', '.join(others)}, or " if others else ""
            message += f"Its episodes had no more queries to send: {busier}{no_work_cause}"
        messages.append(message)
    return messages
