"""
The one retry policy for requests to the Hub and to model servers: which failures are worth another try, and how
long to wait before it. `hub/push.py` and `backends/endpoint_retries.py` both follow it.

Retryable: a timeout or dropped connection, `408` (request timeout), `425` (too early), `429` (rate limited) and
every `5xx`. Never retried: other `4xx`, such as `400` (bad request), `401`/`403` (auth), `404` (not found) and `422`
(a request the server's schema rejects), and `HF_HUB_OFFLINE` refusing to send the request at all
(`OfflineModeIsEnabled`, a `ConnectionError`), which a second identical request cannot fix.
"""

import random

from huggingface_hub.errors import HfHubHTTPError, HTTPError, OfflineModeIsEnabled


RETRYABLE_STATUSES = frozenset({408, 425, 429})
# Failures with no HTTP answer: httpx's `HTTPError` (re-exported by `huggingface_hub.errors`) covers timeouts and
# dropped connections; `InferenceTimeoutError` is also a `TimeoutError`.
TRANSPORT_ERRORS = (HTTPError, TimeoutError, ConnectionError)


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth another try: [`RETRYABLE_STATUSES`] and every `5xx`."""
    return status in RETRYABLE_STATUSES or 500 <= status < 600


def http_status(error: BaseException) -> int | None:
    """The HTTP status of a Hub client error, `None` when there was no answer (or no HTTP at all)."""
    response = getattr(error, "response", None) if isinstance(error, HfHubHTTPError) else None
    return response.status_code if response is not None else None


def is_retryable(error: BaseException) -> bool:
    """Whether a failed request is worth another try (see the module's docstring)."""
    if isinstance(error, HfHubHTTPError):
        status = http_status(error)
        return status is None or is_retryable_status(status)
    if isinstance(error, OfflineModeIsEnabled):
        return False
    return isinstance(error, TRANSPORT_ERRORS)


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's `Retry-After` in seconds, when it gives one as a number."""
    response = getattr(error, "response", None) if isinstance(error, HfHubHTTPError) else None
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def backoff_seconds(
    retry: int, rng: random.Random, base: float, cap: float = float("inf"), retry_after: float | None = None
) -> float:
    """
    How long to wait before retry number `retry` (1 for the first): a uniformly random time in
    `[0, min(cap, base * 2 ** (retry - 1))]` ("full jitter"), or the server's `retry_after` when it asks for longer
    (itself capped at `cap`).
    """
    wait = rng.uniform(0.0, min(cap, base * 2 ** (retry - 1)))
    if retry_after is not None:
        wait = max(wait, min(retry_after, cap))
    return wait
