"""
Pushing a local folder (a dataset with its card, or a policy with its card) to the Hub, with retries. The local
copy is never touched: a push that fails for good says how to push again.
"""

import logging
import random
import time
from collections.abc import Callable

from huggingface_hub import HfApi

from .retry import backoff_seconds, is_retryable, retry_after_seconds


logger = logging.getLogger(__name__)


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
    backoff_max: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    api: HfApi | None = None,
) -> str:
    """
    Creates `repo_id` if needed and uploads `folder` (the files matching `allow_patterns`) in one commit. Retryable
    failures (see [`~instrl_trl.hub.retry.is_retryable`]) are retried `max_retries` times with exponential backoff
    and jitter (at most `backoff_max` seconds), each retry logged. Returns the commit URL. The token comes from
    `HF_TOKEN` or `hf auth login`, never from an argument that could be logged.
    """
    api = api or HfApi()
    rng = random.Random()
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
            if not is_retryable(error) or attempt == max_retries:
                break
            wait = backoff_seconds(attempt + 1, rng, backoff_base, backoff_max, retry_after_seconds(error))
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
