import os
from dataclasses import dataclass, field

from .roles import parse_role_spec


@dataclass
class RoleArguments:
    r"""
    The LLM roles that evolve instructions, shared by the `train-policy` and `generate` configs.

    Parameters:
        rewriter (`dict` or `str`, *optional*):
            Backend of the rewriter: a mapping with `backend` (`"rules"`, `"transformers"` or `"endpoint"`), `model`
            and the backend's settings (e.g. `base_url`, `token_env`, `max_concurrency`, `generation_kwargs`). The
            offline rules engine when unset. Tokens never go here: name an environment variable with `token_env`.
        reviewer (`dict` or `str`, *optional*):
            Backend of the reviewer, in the same form as `rewriter`.
        response_cache (`str`, *optional*):
            Path of the sqlite file that caches LLM answers, so that a rerun or a resumed run never pays twice for the
            same query. Defaults to `<output_dir>/response_cache.sqlite`.
    """

    rewriter: dict | str | None = field(
        default=None,
        metadata={
            "help": "Backend of the rewriter: a mapping with `backend` (rules, transformers or endpoint), `model` and "
            "its settings. Rules engine when unset. Never a token: name an environment variable with `token_env`."
        },
    )
    reviewer: dict | str | None = field(
        default=None, metadata={"help": "Backend of the reviewer, in the same form as `rewriter`."}
    )
    response_cache: str | None = field(
        default=None,
        metadata={
            "help": "sqlite file caching LLM answers (a rerun never pays twice). Defaults to "
            "<output_dir>/response_cache.sqlite."
        },
    )

    def __post_init__(self):
        self.parse_roles()

    def parse_roles(self, roles: tuple[str, ...] = ("rewriter", "reviewer")) -> None:
        """Replaces each role's spec (a mapping or a JSON string) with its checked mapping; raises on a bad one."""
        for role in roles:
            setattr(self, role, parse_role_spec(role, getattr(self, role)))

    def response_cache_path(self, output_dir: str) -> str:
        return self.response_cache or os.path.join(output_dir, "response_cache.sqlite")
