"""
A real OpenAI-compatible server for the endpoint tests: `transformers serve` (transformers' own server, from
`transformers[serving]`) on 127.0.0.1, serving a local folder on CPU. The fake server (`openai_server.py`) stays for
fault injection; this one checks that what the endpoint backend sends means what it should to a real server.
"""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from tests.hub_server import reserve_port


class TransformersServe:
    r"""
    Runs `transformers serve FOLDER --host 127.0.0.1 --port PORT --device cpu` as a context manager: entering starts it
    and waits until `/health` answers (at most `startup_timeout` seconds), leaving stops it, whatever happened.

    Args:
        model_dir (`str`):
            The model folder to serve; requests name it as their `model`.
        log_path (`str` or `Path`):
            Where the server's output goes; its tail is part of the error when the server does not start.
        startup_timeout (`float`, *optional*, defaults to `120.0`):
            Seconds to wait for readiness (about 20 s for a tiny model on an idle machine).
        extra_args (`tuple[str, ...]`, *optional*):
            More options, e.g. `("--continuous-batching",)`.
    """

    def __init__(
        self,
        model_dir: str,
        log_path: str | Path,
        startup_timeout: float = 120.0,
        extra_args: tuple[str, ...] = (),
    ):
        self.model_dir = model_dir
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self.port = reserve_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model_dir]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", *self.extra_args]
        # The server loads only the local folder: it must not look for anything on the Hub
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_until_ready(start)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - start
        return self

    def _wait_until_ready(self, start: float) -> None:
        while time.perf_counter() - start < self.startup_timeout:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"`transformers serve` exited with status {self._process.returncode} before it was ready. "
                    f"Its output ends with:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise TimeoutError(
            f"`transformers serve` was not ready after {self.startup_timeout:.0f} s. Its output ends with:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, num_chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-num_chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=15)

    def __exit__(self, *exc_info) -> None:
        self.stop()
