"""
Text that looks like a credential: access tokens and keys, recognised by their issuers' published prefixes and
lengths. A seed instruction is sent to LLMs and written to the dataset's rows, so one holding a secret is refused
before any query ([`check_no_secrets`]); cards are checked before they are written.

The patterns are kept tight (the issuer's prefix and a long run of token characters), so that ordinary text such as
"sk-learn", "hf_hub_download" or an upper-case acronym never matches.
"""

import re


# name -> pattern; each needs the issuer's prefix and the token's length, so prose does not match
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    # `hf_` and 34 letters; an identifier such as `hf_hub_download` breaks the run at its underscore
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    # a digit is required: "sk-learn-is-a-python-library-for-machine-learning" is prose
    "OpenAI-style API key": re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-)?(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{32,}"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{20,}"),
    "Stripe secret key": re.compile(r"\b[rs]k_live_[0-9A-Za-z]{20,}\b"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
}


def find_secret(text: str) -> str | None:
    r"""
    Returns the kind of the first credential-like string in `text` (a key of [`SECRET_PATTERNS`]), or `None`. The
    match itself is never returned, so that a caller cannot echo it.

    Example:

    ```python
    >>> find_secret("Summarise the hf_hub_download docs.") is None
    True
    >>> find_secret("Use the token hf_" + "aB3" * 12 + " to log in.")
    'Hugging Face token'

    ```
    """
    if not isinstance(text, str):
        return None
    for kind, pattern in SECRET_PATTERNS.items():
        if pattern.search(text):
            return kind
    return None


def check_no_secrets(texts: list, column: str, what: str = "seed") -> None:
    r"""
    Refuses texts that look like they hold a credential, before they are sent to any model or written anywhere.

    Args:
        texts (`list`):
            The values of `column`, in row order (non-strings are ignored).
        column (`str`):
            The column they come from, named in the error.
        what (`str`, *optional*, defaults to `"seed"`):
            What a row is, named in the error.

    Raises:
        `ValueError`: naming the rows (their indices) and the kind of credential, never the credential itself.
    """
    found = [(index, kind) for index, text in enumerate(texts) if (kind := find_secret(text)) is not None]
    if not found:
        return
    rows = ", ".join(f"{index} ({kind})" for index, kind in found[:10]) + (", ..." if len(found) > 10 else "")
    raise ValueError(
        f"{len(found)} {what}{'s' if len(found) > 1 else ''} in `{column}` look like they hold a secret, at row "
        f"{rows}. A {what} is sent to the LLM roles and written to the dataset's rows, cache and pushed files, so "
        f"nothing was sent or written: remove the secret from those rows (or drop them), revoke it if it was real, "
        "and run again."
    )
