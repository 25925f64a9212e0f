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
from dataclasses import replace
from pathlib import Path
from typing import Self

from .base import ChoiceScores, Generation, Prompt, TextGenerator, Usage
from .thinking import answer_after_thinking


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


def without_thinking(found: dict[str, Generation]) -> dict[str, Generation]:
    """
    Cached answers as the backends give them now: a reasoning model's thinking left out (answers cached by older
    versions kept it), and one that is all thinking a miss, asked again (the backend fails it, with the fix).
    """
    kept = {}
    for key, generation in found.items():
        text = answer_after_thinking(generation.text)
        if is_answer(text):
            kept[key] = generation if text == generation.text else replace(generation, text=text)
    return kept


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


class CachedGenerator(TextGenerator):
    r"""
    Wraps a [`TextGenerator`] with a [`ResponseCache`]. It answers as the wrapped generator would (same `backend`,
    `model_name` and `cache_identity()`), but pays only for prompts the cache does not hold.

    In one [`~CachedGenerator.generate`] call, hits are read from the cache (`Usage(cached=True, seconds=0.0)`, token
    counts as stored), and the misses, each distinct prompt once and in order of first appearance, go to the wrapped
    generator in a single batch. Its successful answers are stored; failures and empty answers are not, so they are
    asked again next time. A prompt repeated within the batch is answered from the first occurrence and reported as
    cached.

    Sampling seeds (`seeds` of [`~CachedGenerator.generate`]) are part of the key when the wrapped generator samples
    with the call's settings ([`TextGenerator.samples`]): a retry with a new seed is a new query. Under greedy
    decoding they are left out of the key and not sent, since every seed would give the same answer.

    Args:
        generator ([`TextGenerator`]):
            The generator to wrap.
        cache ([`ResponseCache`], `str` or `os.PathLike`):
            The cache, or the path of its file (then this object owns it and [`~CachedGenerator.close`] closes it).
    """

    def __init__(self, generator: TextGenerator, cache: ResponseCache | str | os.PathLike):
        self.generator = generator
        self._owns_cache = not isinstance(cache, ResponseCache)
        self.cache = ResponseCache(cache) if self._owns_cache else cache

    @property
    def backend(self) -> str:
        return self.generator.backend

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    @property
    def max_tokens_key(self) -> str | None:
        return self.generator.max_tokens_key

    def cache_identity(self) -> dict:
        return self.generator.cache_identity()

    def check_generation_kwargs(self, generation_kwargs: dict, where: str = "generation_kwargs") -> None:
        self.generator.check_generation_kwargs(generation_kwargs, where)

    def samples(self, generation_kwargs: dict) -> bool:
        return self.generator.samples(generation_kwargs)

    @property
    def choice_modes(self) -> tuple[str, ...]:
        return self.generator.choice_modes

    def score_choices(self, prompts: list[Prompt], choices, mode: str) -> list[ChoiceScores]:
        """[`TextGenerator.score_choices`] through the cache: the scores are stored as JSON under their own key."""
        identity = self.generator.cache_identity()
        settings = {"score_choices": list(choices), "mode": mode}
        keys = [cache_key(identity, prompt, settings) for prompt in prompts]
        found = self.cache.get_many(keys)
        missing = [i for i, key in enumerate(keys) if key not in found]
        fresh = self.generator.score_choices([prompts[i] for i in missing], choices, mode) if missing else []
        stored = {
            keys[i]: Generation(json.dumps({"probabilities": scores.probabilities, "text": scores.text}), scores.usage)
            for i, scores in zip(missing, fresh, strict=True)
            if scores.probabilities is not None
        }
        self.cache.put_many(stored)
        by_index = dict(zip(missing, fresh, strict=True))
        results = []
        for i, key in enumerate(keys):
            if i in by_index:
                results.append(by_index[i])
            else:
                data = json.loads(found[key].text)
                results.append(ChoiceScores(tuple(data["probabilities"]), data["text"], found[key].usage))
        return results

    def generate(self, prompts: list[Prompt], seeds: list[int] | None = None, **generation_kwargs) -> list[Generation]:
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"Got {len(seeds)} `seeds` for {len(prompts)} prompts; pass one seed per prompt.")
        if seeds is None or not self.generator.samples(generation_kwargs):
            seeds = [None] * len(prompts)
        identity = self.generator.cache_identity()
        keys = [
            cache_key(identity, prompt, generation_kwargs, seed) for prompt, seed in zip(prompts, seeds, strict=True)
        ]
        found = without_thinking(self.cache.get_many(keys))
        to_ask: dict[str, tuple[Prompt, int | None]] = {}  # key -> (prompt, seed), each missing key once, in order
        for key, prompt, seed in zip(keys, prompts, seeds, strict=True):
            if key not in found:
                to_ask.setdefault(key, (prompt, seed))

        fresh: dict[str, Generation] = {}
        if to_ask:
            asked_prompts = [prompt for prompt, _ in to_ask.values()]
            asked_seeds = [seed for _, seed in to_ask.values()]
            if all(seed is None for seed in asked_seeds):
                asked_seeds = None
            generations = self.generator.generate(asked_prompts, seeds=asked_seeds, **generation_kwargs)
            if len(generations) != len(to_ask):
                raise RuntimeError(
                    f"The {self.backend!r} generator returned {len(generations)} generations for {len(to_ask)} "
                    "prompts; a `TextGenerator` must return one per prompt, in order."
                )
            fresh = dict(zip(to_ask, generations, strict=True))
            self.cache.put_many((key, generation) for key, generation in fresh.items() if is_answer(generation.text))

        results, answered = [], set()
        for key in keys:
            if key in found:
                results.append(found[key])
            elif key not in answered:
                results.append(fresh[key])
                answered.add(key)
            else:
                results.append(_repeat(fresh[key]))
        return results

    def close(self) -> None:
        """Closes the cache if this object opened it from a path."""
        if self._owns_cache:
            self.cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _repeat(generation: Generation) -> Generation:
    # a repeat within one batch was not paid for: it counts as a cache hit, and a failure stays a failure
    usage = generation.usage
    return Generation(
        generation.text,
        Usage(
            cached=True,
            failed=generation.text is None or usage.failed,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        ),
        generation.finish_reason,
    )
