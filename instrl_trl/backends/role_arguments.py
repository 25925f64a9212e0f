import os
from dataclasses import dataclass, field

from .roles import parse_role_spec


# Role settings that change how queries are sent, never what they answer: left out of a run's fingerprint, so that a
# rerun may move the server to another port or raise its concurrency and still resume.
TRANSPORT_SETTINGS = frozenset(
    {"base_url", "token_env", "max_concurrency", "timeout", "max_retries", "backoff_base", "backoff_max", "seed"}
)


@dataclass
class RoleArguments:
    r"""
    The LLM roles that evolve instructions, shared by the `train-policy` and `generate` configs.

    Parameters:
        rewriter (`dict` or `str`, *optional*):
            Backend of the rewriter: a mapping with `backend` (`"rules"`, `"transformers"` or `"endpoint"`), `model`
            and the backend's settings (e.g. `base_url`, `token_env`, `max_concurrency`, `generation_kwargs`). The
            offline rules engine when unset. Tokens never go here: name an environment variable with `token_env`.
            `constraint_families` (`[ifeval]` by default) chooses the verifiable constraints `add_constraints` draws;
            `ifbench`, IFBench's test constraints, is refused (it would contaminate the benchmark).
        reviewer (`dict` or `str`, *optional*):
            Backend of the reviewer, in the same form as `rewriter`.
        response_cache (`str`, *optional*):
            Path of the sqlite file that caches LLM answers, so that a rerun or a resumed run never pays twice for the
            same query. Defaults to `<output_dir>/response_cache.sqlite`.
        max_failure_fraction (`float`, *optional*, defaults to `1.0`):
            The stage stops (non-zero exit, rows and checkpoints kept, the same command resumes) when, in one batch,
            at least this fraction of one role's queries failed after the backend's retries. `1.0` stops when every
            query of a batch failed; lower it to stop sooner on a flaky endpoint.
    """

    rewriter: dict | str | None = field(
        default=None,
        metadata={
            "help": "Backend of the rewriter: a mapping with `backend` (rules, transformers or endpoint), `model` and "
            "its settings. Rules engine when unset. Never a token: name an environment variable with `token_env`. "
            "`constraint_families` ([ifeval] by default; never ifbench, a benchmark's test constraints) chooses what "
            "`add_constraints` draws."
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

    max_failure_fraction: float = field(
        default=1.0,
        metadata={
            "help": "Stop the stage (rows and checkpoints kept) when at least this fraction of one role's queries in "
            "a batch failed after retries; 1.0 stops when every query of a batch failed."
        },
    )

    def __post_init__(self):
        self.parse_roles()

    def parse_roles(self, roles: tuple[str, ...] = ("rewriter", "reviewer")) -> None:
        """Replaces each role's spec (a mapping or a JSON string) with its checked mapping; raises on a bad one."""
        if not 0.0 < self.max_failure_fraction <= 1.0:
            raise ValueError(
                f"`max_failure_fraction` must be in (0, 1], got {self.max_failure_fraction}: it is the fraction of a "
                "role's queries in one batch that may fail before the stage stops (1.0: all of them)."
            )
        for role in roles:
            setattr(self, role, parse_role_spec(role, getattr(self, role)))

    def response_cache_path(self, output_dir: str) -> str:
        return self.response_cache or os.path.join(output_dir, "response_cache.sqlite")

    def roles_fingerprint(self, roles: tuple[str, ...] = ("rewriter", "reviewer")) -> dict[str, dict]:
        """Each role's settings that change its answers (backend, model, generation settings), for fingerprints."""
        return {
            role: {key: value for key, value in (getattr(self, role) or {}).items() if key not in TRANSPORT_SETTINGS}
            for role in roles
        }
