"""
The response cache: LLM answers stored on disk by a hash of everything that determines them, so that a rerun, a
resume or a second stage asking the same prompt pays nothing. It plays the role of datatrove's
`pipeline/inference/checkpointing.py` for our queries.
"""

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from .base import Generation, Prompt, Usage


# Plain `logging`, not `accelerate.logging.get_logger`: the latter raises unless an accelerate state exists, and the
# cache is also used outside any launcher (generation stage, notebooks).
logger = logging.getLogger(__name__)

# sqlite's default limit on `?` parameters per statement is 999 on older builds
_MAX_KEYS_PER_QUERY = 500
# Primary result codes (the extended ones carry them in the low byte) that mean the file itself is damaged. Other
# errors ("database is locked", "unable to open database file") must not move a healthy cache aside.
_CORRUPTION_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    finish_reason TEXT
) WITHOUT ROWID
"""
# Caches written before `finish_reason` existed get the column, empty (`None`: the backend did not say)
_ADDED_COLUMNS = {"finish_reason": "TEXT"}
_COLUMNS = "key, text, prompt_tokens, completion_tokens, created, finish_reason"
# A stored key keeps its first answer, except an empty one (stored by versions that cached empty answers), which
# `get_many` reads as a miss and the next answer replaces
_INSERT = f"""
INSERT INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(key) DO UPDATE SET text = excluded.text, prompt_tokens = excluded.prompt_tokens,
    completion_tokens = excluded.completion_tokens, created = excluded.created, finish_reason = excluded.finish_reason
WHERE trim(responses.text, ' ' || char(9, 10, 11, 12, 13)) = ''
"""


class _CorruptCacheError(Exception):
    """`PRAGMA quick_check` reported damage without sqlite raising."""


def _is_corruption(error: Exception) -> bool:
    if isinstance(error, _CorruptCacheError):
        return True
    code = getattr(error, "sqlite_errorcode", None) or 0
    return isinstance(error, sqlite3.DatabaseError) and code & 0xFF in _CORRUPTION_CODES


def cache_key(identity: dict, prompt: Prompt, generation_kwargs: dict, seed: int | None = None) -> str:
    r"""
    Returns the cache key of one query: the sha256 of a canonical JSON (sorted keys, no spaces) of the backend
    identity (backend and model, see [`TextGenerator.cache_identity`]), the prompt, the generation parameters and,
    when given, the sampling seed.

    Args:
        identity (`dict`):
            What makes two generators answer alike, from [`TextGenerator.cache_identity`].
        prompt (`str` or `list[dict]`):
            The prompt sent: a user message, or chat messages.
        generation_kwargs (`dict`):
            The generation parameters sent with it. Values must be JSON-serializable; `0` and `0.0` give different
            keys, so pass a parameter the same way in every run.
        seed (`int` or `None`, *optional*, defaults to `None`):
            The sampling seed of this query: another seed is another sample, so another key. `None` (greedy
            decoding, or no seed) leaves it out of the key.

    Returns:
        `str`: 64 hexadecimal characters.

    Example:
    ```python
    >>> key = cache_key({"backend": "endpoint", "model": "m"}, "Name a river.", {"temperature": 0.7})
    >>> key == cache_key({"model": "m", "backend": "endpoint"}, "Name a river.", {"temperature": 0.7})
    True
    >>> key == cache_key({"backend": "endpoint", "model": "m"}, "Name a river.", {"temperature": 0.8})
    False
    >>> key == cache_key({"backend": "endpoint", "model": "m"}, "Name a river.", {"temperature": 0.7}, seed=1)
    False

    ```
    """
    payload = {"identity": identity, "prompt": prompt, "generation_kwargs": generation_kwargs}
    if seed is not None:
        payload["seed"] = seed
    try:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    except TypeError as error:
        # repr() would embed memory addresses, and a key that changes every run silently disables the cache
        raise TypeError(
            "The response cache needs JSON-serializable `identity` and `generation_kwargs`, got "
            f"identity={identity!r} and generation_kwargs={generation_kwargs!r} ({error}). Pass plain numbers, "
            "strings, lists and dicts."
        ) from error
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def is_answer(text: str | None) -> bool:
    """Whether `text` is worth caching: an answer with something besides whitespace (not a failure, not empty)."""
    return text is not None and bool(text.strip())


class ResponseCache:
    r"""
    A persistent key -> answer store in one sqlite3 file.

    The file uses sqlite's WAL journal, so any number of readers (threads or processes, e.g. one per rank) work while
    one writer appends. A call borrows a connection from this object's idle ones (opening one only when all are in use)
    and gives it back when done, so there are never more connections than calls at once, however many threads come
    and go (a pipelined rollout's request threads are new at every rollout); all of them are closed by
    [`~ResponseCache.close`]. Writes from threads of this process also take a lock, so they queue here instead of
    polling sqlite's busy handler.

    A damaged file (garbage bytes, a truncated page) is detected when the cache opens: it is moved aside to
    `<path>.corrupt-<timestamp>` (with its `-wal`/`-shm` files, if any), a warning names the new location, and an
    empty cache is created in its place. The run goes on; only the cached answers are lost, and they are paid again.

    Args:
        path (`str` or `os.PathLike`):
            The sqlite file; it and its parent folders are created if missing.

    Example:
    ```python
    >>> import tempfile
    >>> from instrl_trl.backends.base import Generation, Usage
    >>> with ResponseCache(f"{tempfile.mkdtemp()}/responses.sqlite") as cache:
    ...     cache.put_many({"k": Generation("Equal", Usage(prompt_tokens=40, completion_tokens=1))})
    ...     found = cache.get_many(["k", "missing"])
    >>> list(found), found["k"].text, found["k"].usage.cached, found["k"].usage.prompt_tokens
    (['k'], 'Equal', True, 40)

    ```
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections: list[sqlite3.Connection] = []  # every connection opened, to close them all
        self._idle: list[sqlite3.Connection] = []  # those no call is using now
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        connection = self._open_checked()
        self._connections.append(connection)
        self._idle.append(connection)

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False: a connection is borrowed by one call at a time, from whichever thread makes it.
        # Connecting reads nothing: a damaged file raises at the first statement.
        connection = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def _open_checked(self) -> sqlite3.Connection:
        try:
            connection = self._connect()
            problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                connection.close()
                raise _CorruptCacheError("; ".join(problems[:3]))
        except (sqlite3.DatabaseError, _CorruptCacheError) as error:
            if not _is_corruption(error):
                raise
            moved_to = self._move_aside()
            logger.warning(
                "The response cache %s is corrupted (%s); it was moved to %s and an empty cache was created. The run "
                "goes on, and answers that were cached will be queried again.",
                self.path,
                error,
                moved_to,
            )
            connection = self._connect()
        connection.execute(_SCHEMA)
        columns = {row[1] for row in connection.execute("PRAGMA table_info(responses)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name in columns:
                continue
            try:
                with connection:
                    connection.execute(f"ALTER TABLE responses ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as error:  # another process added it first
                if "duplicate column" not in str(error):
                    raise
        return connection

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target, attempt = Path(f"{self.path}.corrupt-{stamp}"), 0
        while target.exists():  # never overwrite an earlier copy
            attempt += 1
            target = Path(f"{self.path}.corrupt-{stamp}-{attempt}")
        os.replace(self.path, target)
        # a stale WAL next to a fresh file would be replayed into it
        for suffix in _SIDECAR_SUFFIXES:
            sidecar = Path(f"{self.path}{suffix}")
            if sidecar.exists():
                os.replace(sidecar, Path(f"{target}{suffix}"))
        return target

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """An idle connection (or a new one when every connection is in use), given back when the block ends."""
        with self._connections_lock:
            if self._closed:
                raise RuntimeError(f"The response cache {self.path} is closed; open a new `ResponseCache` to use it.")
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._connect()
            with self._connections_lock:
                self._connections.append(connection)
        try:
            yield connection
        finally:
            with self._connections_lock:
                if not self._closed:
                    self._idle.append(connection)

    def get_many(self, keys: Iterable[str]) -> dict[str, Generation]:
        r"""
        Looks up `keys` and returns the stored answers as `{key: Generation}`, keys not found left out. Each
        [`Generation`] reports `Usage(cached=True, seconds=0.0)` with the token counts and the finish reason stored
        with it. An empty or whitespace-only answer, which caches written by older versions may hold, is a miss: it
        is asked again.
        """
        keys = list(dict.fromkeys(keys))
        found = {}
        with self._connection() as connection:
            for start in range(0, len(keys), _MAX_KEYS_PER_QUERY):
                chunk = keys[start : start + _MAX_KEYS_PER_QUERY]
                rows = connection.execute(
                    "SELECT key, text, prompt_tokens, completion_tokens, finish_reason FROM responses "
                    f"WHERE key IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, text, prompt_tokens, completion_tokens, finish_reason in rows:
                    if not is_answer(text):
                        continue
                    usage = Usage(cached=True, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
                    found[key] = Generation(text, usage, finish_reason)
        return found

    def put_many(self, items: Mapping[str, Generation] | Iterable[tuple[str, Generation]]) -> None:
        r"""
        Stores answers, in one transaction.

        Args:
            items (`Mapping[str, Generation]` or `Iterable[tuple[str, Generation]]`):
                Key -> successful [`Generation`]. A key already stored keeps its first answer, so that what a run
                has read never changes under it (an empty answer stored by an older version, which no run reads, is
                replaced). A failed generation (`text=None`) or an empty answer (nothing but
                whitespace) raises a `ValueError`: failures must be asked again, not replayed.
        """
        if isinstance(items, Mapping):
            items = items.items()
        created = time.time()
        rows = []
        for key, generation in items:
            if not is_answer(generation.text):
                what = "failed (`text` is None)" if generation.text is None else f"is empty ({generation.text!r})"
                raise ValueError(f"Cannot cache key {key!r}: its generation {what}. Store successful answers only.")
            usage = generation.usage
            rows.append(
                (key, generation.text, usage.prompt_tokens, usage.completion_tokens, created, generation.finish_reason)
            )
        if not rows:
            return
        with self._connection() as connection, self._write_lock, connection:  # commits, or rolls back on error
            connection.executemany(_INSERT, rows)

    def __len__(self) -> int:
        with self._connection() as connection:
            return connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Closes every connection this cache opened (in any thread). Calling it again does nothing."""
        with self._connections_lock:
            self._closed = True
            connections, self._connections, self._idle = self._connections, [], []
        for connection in connections:
            connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"
