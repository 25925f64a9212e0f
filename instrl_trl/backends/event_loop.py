"""
The process's one asyncio event loop for HTTP requests, in a daemon thread, and the one `aiohttp` session on it.

The stages and rollouts call roles from plain threads (one per request in flight, see `role_calls.py`); each request
itself runs here, as a coroutine, so that hundreds of requests in flight cost one thread's worth of Python between
them rather than a thread and an HTTP client's state machine each. `aiohttp` parses HTTP in C: measured on 2 CPU
cores against a local server, 0.5 ms of client CPU per chat completion, against 3.1 ms for the `openai` client on
`httpx` (see `benchmarks/server_utilization.py`, where the client's CPU per request is what limits a fast server).

```python
async def fetch(session: aiohttp.ClientSession) -> bytes:
    async with session.get(url) as response:
        return await response.read()

body = run_with_session(fetch, timeout=30.0)  # from any thread; TimeoutError after 30 s, the request cancelled
```
"""

import asyncio
import atexit
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp


T = TypeVar("T")

_lock = threading.Lock()
# (process id, loop, session): a child process (fork) starts its own, the parent's thread does not exist there
_state: tuple[int, asyncio.AbstractEventLoop, aiohttp.ClientSession, threading.Thread] | None = None


def _start() -> tuple[int, asyncio.AbstractEventLoop, aiohttp.ClientSession, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="instrl-trl-http", daemon=True)
    thread.start()

    async def open_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            # No limit here: the callers bound the requests in flight per server (`max_concurrency`)
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            # No cookies kept between servers, and nothing read from the environment: `trust_env` would add
            # credentials from ~/.netrc to requests; proxies are chosen per request (`endpoint_transport.py`)
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
        )

    session = asyncio.run_coroutine_threadsafe(open_session(), loop).result()
    return os.getpid(), loop, session, thread


def _current() -> tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]:
    global _state
    with _lock:
        if _state is None or _state[0] != os.getpid():
            _state = _start()
        return _state[1], _state[2]


def run_with_session(request: Callable[[aiohttp.ClientSession], Awaitable[T]], timeout: float) -> T:
    """
    `await request(session)` on the process's HTTP loop, from any other thread; after `timeout` seconds of wall time
    the coroutine is cancelled (its connection closed) and `TimeoutError` is raised. Its other errors are raised here.
    """
    loop, session = _current()
    if threading.current_thread().name == "instrl-trl-http":
        raise RuntimeError("run_with_session() was called from the HTTP loop itself; await the request instead.")
    return asyncio.run_coroutine_threadsafe(asyncio.wait_for(request(session), timeout), loop).result()


@atexit.register
def _close() -> None:
    """Closes the session before the interpreter stops (else aiohttp reports it unclosed)."""
    state = _state
    if state is None or state[0] != os.getpid():
        return
    _, loop, session, thread = state
    with contextlib.suppress(Exception):  # at exit, a session that cannot close has nothing left to lose
        asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=2)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=2)
    if not thread.is_alive():
        loop.close()
