"""
How the requests to one endpoint are retried, for [`EndpointGenerator`], under the one retry policy of `hub/retry.py`,
and which failures stop the run instead.

- **Retried**, with exponential backoff and full jitter (or the server's `Retry-After` when it asks for longer):
  `408`, `425`, `429`, every `5xx`, a timeout (the attempt's wall-clock deadline included), a lost connection and an
  empty answer ([`EmptyAnswer`]). When every attempt fails, the query counts as failed.
- **Failed at once**, the query counting as failed: any other `4xx` (such as `400`, or `422` for a request the
  server's schema rejects) and a `200` that is not a chat completion, is larger than `max_tokens` allows or is a
  reasoning model's thinking with no answer ([`MalformedResponse`]): the next answer would be the same. The
  warning, and the query's error, say what to change.
- **Raised**, stopping the run with the fix: `401`/`403` (`PermissionError`), `404` (`ValueError`) and, for Inference
  Providers, `HF_HUB_OFFLINE=1` (`RuntimeError`): every other request would fail alike.

What the server said reaches logs and errors without the tokens (`redact`). A failed query's error (the generator's
`last_error`, which the stage's failure message quotes) ends with what to check for its kind of failure.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from huggingface_hub.errors import OfflineModeIsEnabled

from ..hub.retry import backoff_seconds, is_retryable_status
from .endpoint_answers import EmptyAnswer
from .endpoint_transport import EndpointStatusError, MalformedResponse


logger = logging.getLogger(__name__)

Result = TypeVar("Result")

# What to check, by kind of failure: the end of a failed query's error (no final period: the stage's error goes on)
UNREACHABLE_FIX = "Check that it is running and reachable"
TIMEOUT_FIX = "Check that the server is running, and that the role's `timeout` gives it time to answer"
SERVER_ERROR_FIX = "The server kept failing: its log says why (if it is overloaded, lower `max_concurrency`)"
REFUSED_FIX = (
    "The server refused the request: check that the prompt fits the model's context and that the server accepts "
    "`model` and each field of the role's `generation_kwargs`"
)
EMPTY_ANSWER_FIX = "Check the server's log, and that it serves `model` with its chat template"


@dataclass(frozen=True)
class RequestRetries:
    r"""
    The retries of the requests to one endpoint.

    Args:
        endpoint (`str`):
            Where the requests go, for logs and errors (a `base_url`, or the provider and model).
        model (`str`):
            The model the requests ask for, for errors.
        token_env (`str` or `None`):
            The variable that holds the endpoint's token, for the fix of a refused request.
        redact (`Callable[[str], str]`):
            The text of a server's message without the tokens, in case it echoes one back.
        max_retries (`int`), backoff_base (`float`), backoff_max (`float`):
            Retries after the first attempt; before retry `n`, a wait uniformly random in
            `[0, min(backoff_max, backoff_base * 2 ** (n - 1))]` seconds, or the server's `Retry-After` when longer
            (capped at `backoff_max`).
        sleep (`Callable[[float], None]`, *optional*, defaults to `time.sleep`):
            How to wait between attempts; with `time.sleep`, a stop of the call's `abort` cuts the wait short.
    """

    endpoint: str
    model: str
    token_env: str | None
    redact: Callable[[str], str]
    max_retries: int
    backoff_base: float
    backoff_max: float
    sleep: Callable[[float], None] = time.sleep

    def call(
        self, attempt: Callable[[], Result], rng: random.Random, abort: threading.Event
    ) -> tuple[Result | None, str | None]:
        """
        `attempt()` until one returns, retried as the module says, its waits drawn from `rng`: `(its result, None)`,
        or `(None, why the query failed)` when no attempt succeeded, or `(None, None)` when `abort` was set first.
        """
        num_attempts = self.max_retries + 1
        for number in range(1, num_attempts + 1):
            if abort.is_set():
                break
            retry_after = None
            try:
                return attempt(), None
            except EndpointStatusError as error:
                self.raise_if_fatal(error)
                server_message = self.redact(error.server_message)[:300]
                reason = f"status {error.status}"
                last_error = reason + (f" ({server_message})" if server_message else "")
                retryable = is_retryable_status(error.status)
                last_error += f". {SERVER_ERROR_FIX if retryable else REFUSED_FIX}"
                if not retryable:
                    logger.warning(
                        "Request to %s failed with status %s, which a retry cannot fix; the query counts as failed. "
                        "Server message: %s",
                        self.endpoint,
                        error.status,
                        server_message,
                    )
                    return None, last_error
                retry_after = error.retry_after
            except OfflineModeIsEnabled:
                raise RuntimeError(self.offline_message()) from None
            except (TimeoutError, ConnectionError) as error:  # `EndpointTimeout` is a `TimeoutError`
                reason = type(error).__name__
                fix = TIMEOUT_FIX if isinstance(error, TimeoutError) else UNREACHABLE_FIX
                last_error = f"{reason} ({self.redact(str(error))[:300]}). {fix}"
            except EmptyAnswer as error:
                reason = str(error)
                last_error = f"{reason}. {EMPTY_ANSWER_FIX}"
            except MalformedResponse as error:
                message = self.redact(str(error))[:300]
                # The server's answers do not follow the chat-completions schema, ignore the length limit or are all
                # reasoning: the next one will not do better
                logger.warning(
                    "Request to %s got a malformed answer (%s: %s), which a retry cannot fix; the query counts as "
                    "failed. %s",
                    self.endpoint,
                    type(error).__name__,
                    message,
                    error.fix,
                )
                # No final period: the stage's error goes on after it
                return None, f"malformed response ({type(error).__name__}: {message}). {error.fix.rstrip('.')}"

            if abort.is_set():
                break
            if number == num_attempts:
                logger.warning(
                    "Request to %s failed (%s) on attempt %d/%d; giving up, the query counts as failed.",
                    self.endpoint,
                    reason,
                    number,
                    num_attempts,
                )
                return None, last_error
            wait = backoff_seconds(number, rng, self.backoff_base, self.backoff_max, retry_after)
            logger.warning(
                "Request to %s failed (%s) on attempt %d/%d; retrying in %.2f s.",
                self.endpoint,
                reason,
                number,
                num_attempts,
                wait,
            )
            if self.sleep is time.sleep:
                abort.wait(wait)  # a stop cuts the wait short
            else:
                self.sleep(wait)
        return None, None

    def raise_if_fatal(self, error: EndpointStatusError) -> None:
        """Raise, with the fix, for a status that every other request would get too: `401`, `403`, `404`."""
        # `from None`: the chained error would carry the server's own text, which we do not control.
        status = error.status
        if status in (401, 403):
            how = (
                f"set the environment variable {self.token_env!r} to a valid token"
                if self.token_env is not None
                else "run `hf auth login`, set `HF_TOKEN`, or name the variable holding the token with `token_env`"
            )
            raise PermissionError(
                f"The endpoint {self.endpoint} refused the request for model {self.model!r} with status {status} "
                f"({'unauthorized' if status == 401 else 'forbidden'}): the token is missing, invalid or lacks "
                f"permission. To fix it, {how}."
            ) from None
        if status == 404:
            server_message = self.redact(error.server_message)[:300]
            raise ValueError(
                f"The endpoint {self.endpoint} answered 404 (not found) for model {self.model!r}"
                f"{': ' + server_message if server_message else ''}. Check `base_url` (the server's address, "
                "e.g. `http://localhost:8000/v1`) and `model` (the id or the name the server serves it under)."
            ) from None

    def offline_message(self) -> str:
        """Why `HF_HUB_OFFLINE=1` stops Inference Providers, and the two ways on."""
        # Only Inference Providers go through huggingface_hub: an explicit `base_url` works offline
        return (
            f"`HF_HUB_OFFLINE=1` stops huggingface_hub from reaching {self.endpoint}. Unset it for this run "
            "(`HF_HUB_OFFLINE=0 instrl-trl ...`), or serve the model yourself (vLLM, TGI, llama.cpp, `transformers "
            "serve`) and set the role's `base_url`: an explicit `base_url` is queried under `HF_HUB_OFFLINE=1` too."
        )
