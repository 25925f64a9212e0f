"""
Files a stage writes whole (results, predictions, cards, `queries.json`): written to a temporary name beside the target
and renamed over it, so that a run killed mid-write leaves the earlier file or the new one, never a cut one.
"""

import contextlib
import json
import os
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """
    Opens a temporary file beside `path` for writing; when the block ends without an error, the file is flushed to
    disk and renamed to `path` (atomic on POSIX file systems). On an error the temporary file is removed and `path`
    is left as it was.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(temporary, mode, encoding=None if "b" in mode else encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def write_text_atomically(path: str, text: str) -> None:
    """Writes `text` to `path` atomically (see [`atomic_open`])."""
    with atomic_open(path) as file:
        file.write(text)


def write_json_atomically(path: str, value, **dump_kwargs) -> None:
    """Writes `value` as JSON (indent 2, a final newline) to `path` atomically (see [`atomic_open`])."""
    with atomic_open(path) as file:
        json.dump(value, file, indent=2, **dump_kwargs)
        file.write("\n")
