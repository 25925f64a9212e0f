"""
Pushing a local folder (a dataset with its card, or a policy with its card) to the Hub, with retries. The local
copy is never touched: a push that fails for good says how to push again.
"""

import logging
import random
import time
from collections.abc import Callable

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError


logger = logging.getLogger(__name__)
_RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


def _is_retryable(error: Exception) -> bool:
    """Rate limits, server errors and dropped connections are worth another try; auth and 4xx errors are not."""
    if isinstance(error, HfHubHTTPError):
        response = getattr(error, "response", None)
        return response is None or response.status_code in _RETRYABLE_STATUS
    return isinstance(error, (ConnectionError, TimeoutError, OSError))


def push_folder(
    folder: str,
    repo_id: str,
    repo_type: str = "dataset",
    *,
    allow_patterns: list[str] | None = None,
    private: bool = False,
    commit_message: str = "Upload with instrl-trl",
    max_retries: int = 3,
    backoff_base: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    api: HfApi | None = None,
) -> str:
    """
    Creates `repo_id` if needed and uploads `folder` (the files matching `allow_patterns`) in one commit. Retryable
    failures are retried `max_retries` times with exponential backoff and jitter, each retry logged. Returns the
    commit URL. The token comes from `HF_TOKEN` or `hf auth login`, never from an argument that could be logged.
    """
    api = api or HfApi()
    last_error: Exception | None = None
    for attempt in range(max_retries + 1):
        try:
            api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
            commit = api.upload_folder(
                folder_path=folder,
                repo_id=repo_id,
                repo_type=repo_type,
                allow_patterns=allow_patterns,
                commit_message=commit_message,
            )
            return str(commit.commit_url if hasattr(commit, "commit_url") else commit)
        except Exception as error:  # noqa: BLE001 - sorted into retryable or not just below
            last_error = error
            if not _is_retryable(error) or attempt == max_retries:
                break
            wait = random.uniform(0, backoff_base * 2**attempt)
            logger.warning(
                f"Push of {folder} to {repo_type} {repo_id} failed (attempt {attempt + 1}/{max_retries + 1}: "
                f"{type(error).__name__}); retrying in {wait:.1f} s."
            )
            sleep(wait)
    raise RuntimeError(
        f"Could not push {folder} to the {repo_type} repository {repo_id}: {last_error}. The local copy in {folder} "
        f"is complete and untouched; push it again with `hf upload {repo_id} {folder} --repo-type {repo_type}` or by "
        "rerunning the same command."
    ) from last_error
