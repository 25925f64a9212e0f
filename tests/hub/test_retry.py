import importlib
import random

import pytest
from huggingface_hub.errors import HfHubHTTPError, HTTPError

from instrl_trl.hub.retry import backoff_seconds, http_status, is_retryable, retry_after_seconds


# the HTTP library huggingface_hub is built on (httpx, or its successor), whichever it is
httpx = importlib.import_module(HTTPError.__module__)


def http_error(status, headers=None):
    response = httpx.Response(status, headers=headers or {}, request=httpx.Request("POST", "http://hub.test/api"))
    return HfHubHTTPError(f"status {status}", response=response)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_rate_limits_timeouts_and_server_errors_are_retried(status):
    assert is_retryable(http_error(status))
    assert http_status(http_error(status)) == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_client_errors_are_not_retried(status):
    assert not is_retryable(http_error(status))


def test_transport_failures_are_retried_but_local_errors_are_not():
    request = httpx.Request("POST", "http://hub.test/api")
    assert is_retryable(httpx.ConnectError("refused", request=request))
    assert is_retryable(httpx.ReadTimeout("slow", request=request))
    assert is_retryable(TimeoutError()) and is_retryable(ConnectionResetError())
    # an `OSError` that is not a network failure (a missing file) will fail the same way again
    assert not is_retryable(FileNotFoundError("data/shard.parquet"))
    assert not is_retryable(ValueError("bad argument"))
    assert http_status(TimeoutError()) is None


def test_retry_after_header():
    assert retry_after_seconds(http_error(429, {"Retry-After": "7"})) == 7.0
    assert retry_after_seconds(http_error(429, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})) is None
    assert retry_after_seconds(http_error(429)) is None
    assert retry_after_seconds(TimeoutError()) is None


def test_backoff_is_full_jitter_capped_and_honours_retry_after():
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 10.0)]:
        waits = [backoff_seconds(retry, random.Random(seed), base=0.5, cap=10.0) for seed in range(200)]
        assert all(0.0 <= wait <= ceiling for wait in waits)
        assert max(waits) > 0.9 * ceiling  # the whole interval is used, not a fixed fraction of it
    assert backoff_seconds(1, random.Random(0), base=0.5, cap=10.0, retry_after=4.0) == 4.0
    assert backoff_seconds(1, random.Random(0), base=0.5, cap=10.0, retry_after=60.0) == 10.0
    # the same rng draws as a hand-written full-jitter wait
    assert backoff_seconds(3, random.Random(5), base=2.0) == random.Random(5).uniform(0.0, 8.0)


def test_offline_mode_is_not_retried_although_it_is_a_connection_error():
    from huggingface_hub.errors import OfflineModeIsEnabled

    error = OfflineModeIsEnabled("Cannot reach http://127.0.0.1:8000/v1: offline mode is enabled.")
    assert isinstance(error, ConnectionError) and not is_retryable(error)
