"""
One run per output folder, and one recipe per output folder: every stage claims its `output_dir` before any work.

- **Lock** (`_run.lock`): an exclusive lock held while the stage runs, naming the holder (pid, host, start time). The
  operating system releases it when the holder exits, however it exits (a `kill -9` included); where the file system
  has no `flock`, a lock whose pid is no longer alive on this host is stale and taken over.
- **Fingerprint** (`_run_fingerprint.json`): what defines the stage's output (the recipe fields that change results,
  the seed data, the policy, the model). A rerun with the same fingerprint resumes; a rerun with another one is
  refused, naming the fields that differ, unless `overwrite_output_dir` is set, which removes the earlier outputs
  and starts afresh.

The leading underscore keeps both files out of [`~transformers.Trainer.push_to_hub`] (which ignores `_*`); the
fingerprint can hold local paths, which must never reach the Hub.
"""

import contextlib
import errno
import glob
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Self

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list


try:
    import fcntl
except ImportError:  # not on Windows: the pid check alone decides
    fcntl = None


LOCK_FILE = "_run.lock"
FINGERPRINT_FILE = "_run_fingerprint.json"
# Errors of `flock` on file systems that do not support it (some network mounts)
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class RunFolderBusyError(RuntimeError):
    """Another run holds the output folder."""


class RunFingerprintError(ValueError):
    """The output folder holds the outputs of a run with another recipe."""


@dataclass
class RunFolderArguments:
    r"""
    What a stage does with an output folder that holds an earlier run.

    Parameters:
        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            Remove the outputs of an earlier run in `output_dir` (checkpoints, shards, progress) and start afresh. By
            default a rerun resumes the earlier run when its recipe is the same, and is refused when it differs.
    """

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Remove the outputs of an earlier run in `output_dir` and start afresh. By default a rerun "
            "resumes the earlier run when its recipe is the same, and is refused when it differs."
        },
    )


class RunFolderLock:
    r"""
    An exclusive lock on `output_dir` for one run, held from [`~RunFolderLock.acquire`] to
    [`~RunFolderLock.release`] (or the end of a `with` block). A second run fails at once with a
    [`RunFolderBusyError`] that names the holding process.

    Args:
        output_dir (`str`):
            The folder to lock; created if missing.
        stage (`str`):
            Name of the stage, for the holder's description.
    """

    def __init__(self, output_dir: str, stage: str):
        self.output_dir = output_dir
        self.stage = stage
        self.path = os.path.join(output_dir, LOCK_FILE)
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        os.makedirs(self.output_dir, exist_ok=True)
        # A released lock file is removed; retry when the file we locked was removed meanwhile by its holder
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                locked = self._flock(fd)
            except BaseException:
                os.close(fd)
                raise
            if not locked:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunFolderBusyError(self._busy_message(holder))
            if _same_file(fd, self.path):
                self._fd = fd
                self._write_holder()
                return
            os.close(fd)
        raise RunFolderBusyError(f"Could not lock {self.path}: other runs keep taking and releasing it.")

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the file while still holding it, so that no run ever locks a file that is gone
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def _flock(self, fd: int) -> bool:
        """Whether this process now holds the lock (`False`: another live process does)."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError as error:
                if error.errno not in _NO_FLOCK:
                    raise
        holder = _read_holder(fd)
        return not holder or not _is_alive_here(holder)

    def _write_holder(self) -> None:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "stage": self.stage,
        }
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(holder).encode(), 0)
        os.fsync(self._fd)

    def _busy_message(self, holder: dict) -> str:
        who = (
            f"process {holder.get('pid')} on host {holder.get('host')!r} (stage `{holder.get('stage')}`, started "
            f"{holder.get('started')})"
            if holder
            else "another process (it has not written its name yet)"
        )
        return (
            f"The output folder {self.output_dir!r} is in use by {who}: two runs writing one folder would lose or "
            f"duplicate rows. Wait for that run to finish (or stop it), or set another `output_dir`. The lock is "
            f"{self.path}; it is released when its process exits."
        )


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _is_alive_here(holder: dict) -> bool:
    """Whether the holder may still run: any process on another host (we cannot tell), a live pid on this one."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except (KeyError, TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


def stage_state() -> PartialState:
    """
    This process's place in the launch ([`~accelerate.PartialState`]), for the stages that build no Trainer
    (`generate`, `evaluate`). On a machine with no GPU it is asked for CPU processes: without `cpu=True`, the processes
    of `accelerate launch --multi_gpu --num_processes 2` on CPUs (DDP over gloo) each believed they were alone, took
    every seed, and wrote one folder twice. A Trainer stage has set it up already (`use_cpu`); the first call decides.
    """
    no_accelerator = not torch.cuda.is_available() and not (hasattr(torch, "xpu") and torch.xpu.is_available())
    return PartialState(cpu=no_accelerator)


def fingerprint_texts(texts: Iterable[str]) -> str:
    """A short digest of a sequence of texts (e.g. the seed instructions), which changes when any text changes."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(str(text).encode()).digest())
    return digest.hexdigest()[:16]


def fingerprint_folder(path: str, patterns: Iterable[str] = ("*.json", "*.safetensors", "*.bin")) -> str | None:
    """
    A short digest of the files of a local model folder matching `patterns` (names and contents), `None` when `path`
    is not a local folder (a Hub id is then identified by its id and revision).
    """
    if not os.path.isdir(path):
        return None
    digest = hashlib.sha256()
    files = sorted({file for pattern in patterns for file in glob.glob(os.path.join(path, pattern))})
    for file in files:
        digest.update(os.path.basename(file).encode())
        with open(file, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def check_fingerprint(
    output_dir: str, fingerprint: dict, overwrite: bool = False, outputs: Iterable[str] = ()
) -> None:
    r"""
    Compares `fingerprint` with the one recorded in `output_dir` by an earlier run, and records it.

    - No recorded fingerprint: this run starts the folder (or adopts one written before fingerprints existed).
    - The same: the run resumes the earlier one.
    - Another, or `overwrite`: with `overwrite`, the earlier `outputs` (glob patterns relative to `output_dir`) are
      removed and the run starts afresh; otherwise a [`RunFingerprintError`] names each field that differs and the
      two ways out.
    """
    fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    path = os.path.join(output_dir, FINGERPRINT_FILE)
    recorded = None
    if os.path.isfile(path):
        with open(path) as f:
            recorded = json.load(f)
    if overwrite:
        remove_outputs(output_dir, outputs)
    elif recorded is not None and recorded != fingerprint:
        differences = [
            f"`{key}`: {_short(recorded.get(key, '(not recorded)'))} before, {_short(fingerprint.get(key, '(unset)'))}"
            " now"
            for key in sorted(set(recorded) | set(fingerprint))
            if recorded.get(key) != fingerprint.get(key)
        ]
        raise RunFingerprintError(
            f"The output folder {output_dir!r} holds a run with another recipe, so resuming it would mix two runs. "
            f"Differences: {'; '.join(differences)}. Set a new `output_dir` for this run, or pass "
            "`--overwrite_output_dir` to delete the earlier run's outputs and start afresh."
        )
    os.makedirs(output_dir, exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(fingerprint, f, indent=2, sort_keys=True)
    os.replace(temporary, path)


def remove_outputs(output_dir: str, outputs: Iterable[str]) -> None:
    """Removes the files and folders of `output_dir` that match the glob `outputs`; never the lock."""
    for pattern in outputs:
        for path in glob.glob(os.path.join(output_dir, pattern)):
            if os.path.basename(path) == LOCK_FILE:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


def _short(value, limit: int = 120) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def claim_run_folder(
    output_dir: str, stage: str, fingerprint: dict, overwrite: bool = False, outputs: Iterable[str] = ()
) -> Iterator[None]:
    r"""
    Claims `output_dir` for one run of `stage`: takes its [`RunFolderLock`], then checks and records the
    `fingerprint` (see [`check_fingerprint`]); the lock is released when the block ends. Under `accelerate launch`,
    the main process decides and every process raises the same error, before any work.

    Args:
        output_dir (`str`):
            The stage's output folder.
        stage (`str`):
            The stage's name; part of the fingerprint, so that one stage never resumes another's folder.
        fingerprint (`dict`):
            What defines the output, as JSON-serialisable values (other values are compared as `str`).
        overwrite (`bool`, *optional*, defaults to `False`):
            Remove the earlier `outputs` and start afresh (`overwrite_output_dir`).
        outputs (`Iterable[str]`, *optional*):
            Glob patterns, relative to `output_dir`, of what the stage writes (removed by `overwrite`).

    Raises:
        [`RunFolderBusyError`]: another run holds the folder.
        [`RunFingerprintError`]: the folder holds a run with another recipe, and `overwrite` is not set.
    """
    state = stage_state()
    lock = RunFolderLock(output_dir, stage)
    failure = [None]
    if state.is_main_process:
        try:
            lock.acquire()
            check_fingerprint(output_dir, {"stage": stage, **fingerprint}, overwrite, outputs)
        except (RunFolderBusyError, RunFingerprintError) as error:
            lock.release()
            failure = [(type(error).__name__, str(error))]
    if state.num_processes > 1:
        broadcast_object_list(failure)
    if failure[0] is not None:
        kind, message = failure[0]
        raise (RunFolderBusyError if kind == RunFolderBusyError.__name__ else RunFingerprintError)(message)
    state.wait_for_everyone()
    try:
        yield
    finally:
        lock.release()
