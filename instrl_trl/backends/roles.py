"""
Building the three roles from recipe mappings, e.g.

```yaml
rewriter:
  backend: endpoint            # rules (default), transformers or endpoint
  model: Qwen/Qwen2.5-7B-Instruct
  base_url: http://localhost:8000/v1
  token_env: MY_ENDPOINT_TOKEN # the name of an environment variable, never the token itself
  generation_kwargs: {temperature: 0.7, max_tokens: 512}
reviewer:
  backend: transformers
  model: smollm2-135m-instruct
  verdict_mode: likelihood     # P(gain) from the verdicts' log-likelihoods; see `LLMReviewer` for the others
  threshold: 0.5
  compare_with_rules: true     # count agreement with the rules reviewer on the same pairs (free)
```

The rewriter's `constraint_families` (`[ifeval]` by default) chooses which verifiable constraints `add_constraints`
draws ([`~instrl_trl.constraints.sample_constraint`]); `ifbench`, IFBench's test constraints, is refused: training on
them contaminates the benchmark ([`~instrl_trl.constraints.check_constraint_families`]).

Besides the backend's settings, a role takes its own (`ROLE_SETTINGS`): the rewriter's `system_prompt`,
`constraint_operations` and `missing_constraint` ([`LLMRewriter`]), the reviewer's `prompt_template`, `verdict_mode`,
`threshold`, `system_prompt` and `compare_with_rules` ([`LLMReviewer`]), the expert's `system_prompt`.

A missing role uses the offline rules engine. LLM roles answer through a persistent response cache, so a rerun or a
resumed run never pays twice for the same query. Settings and `generation_kwargs` are checked against the backend
before any model is loaded or query sent. Roles that name the same transformers model (and revision, dtype and
device) share one loaded copy, each with its own limits: the reviewer answers in a few tokens by default
([`LLMReviewer`]). `model: smollm2-135m-instruct` is a real small instruct model that works offline
([`resolve_model_name`]).
"""

import inspect
import json
from typing import Any

from ..constraints import check_constraint_families
from .base import VERDICT_MODES, Expert, Reviewer, Rewriter, TextGenerator


BACKENDS = ("rules", "transformers", "endpoint")
CONSTRAINT_FAMILIES_KEY = "constraint_families"
# Settings of the LLM roles themselves (the others are the backend's); see `LLMRewriter`, `LLMReviewer`, `LLMExpert`
ROLE_SETTINGS = {
    "rewriter": ("system_prompt", "constraint_operations", "missing_constraint", CONSTRAINT_FAMILIES_KEY),
    "reviewer": ("prompt_template", "verdict_mode", "threshold", "system_prompt"),
    "expert": ("system_prompt",),
}
_SECRET_KEYS = ("token", "api_key", "hf_token", "password")


def parse_role_spec(role: str, spec: dict | str | None) -> dict:
    """Checks a role's mapping (a JSON string from the command line is parsed) and returns it with its `backend`."""
    if spec is None:
        return {"backend": "rules"}
    if isinstance(spec, str):  # from the command line: --rewriter '{"backend": "endpoint", ...}'
        try:
            spec = json.loads(spec) if spec.strip().startswith("{") else {"backend": spec}
        except json.JSONDecodeError as error:
            raise ValueError(
                f"`{role}` is not valid JSON ({error}); pass a mapping such as "
                '\'{"backend": "endpoint", "model": "..."}\'.'
            ) from None
    if not isinstance(spec, dict):
        raise TypeError(f"`{role}` must be a mapping with a `backend` key, got {type(spec).__name__}.")
    spec = dict(spec)
    secrets = [key for key in spec if key.lower() in _SECRET_KEYS]
    if secrets:
        raise ValueError(
            f"`{role}.{secrets[0]}`: tokens never go in a recipe. Put the token in an environment variable and name "
            f"it with `{role}.token_env`, or log in with `hf auth login`."
        )
    backend = spec.setdefault("backend", "rules")
    if backend not in BACKENDS:
        raise ValueError(f"`{role}.backend` is {backend!r}; valid backends: {', '.join(BACKENDS)}.")
    if CONSTRAINT_FAMILIES_KEY in spec:
        if role != "rewriter":
            raise ValueError(
                f"`{role}.{CONSTRAINT_FAMILIES_KEY}`: only the rewriter draws constraints; set "
                f"`rewriter.{CONSTRAINT_FAMILIES_KEY}` instead."
            )
        families = check_constraint_families(spec[CONSTRAINT_FAMILIES_KEY], f"{role}.{CONSTRAINT_FAMILIES_KEY}")
        spec[CONSTRAINT_FAMILIES_KEY] = list(families)  # a list, as YAML and JSON write it
    return spec


def _construct(role: str, cls: type, kwargs: dict[str, Any]):
    parameters = inspect.signature(cls.__init__).parameters
    unknown = [key for key in kwargs if key not in parameters]
    if unknown:
        valid = [name for name in parameters if name not in ("self", "model", "tokenizer")]
        raise ValueError(
            f"`{role}.{unknown[0]}` is not a setting of the {cls.backend} backend; valid settings: "
            f"{', '.join(['backend', *valid])}."
        )
    return cls(**kwargs)


def generator_class(spec: dict) -> type[TextGenerator]:
    """The [`TextGenerator`] class of an LLM role's `backend`."""
    if spec["backend"] == "transformers":
        from .transformers import TransformersGenerator

        return TransformersGenerator
    from .endpoint import EndpointGenerator

    return EndpointGenerator


def build_generator(role: str, spec: dict) -> TextGenerator:
    """A [`TextGenerator`] from a role's mapping (its `backend` key checked already)."""
    kwargs = {key: value for key, value in spec.items() if key != "backend"}
    if "model" not in kwargs:
        raise ValueError(f"`{role}.model` is required for the {spec['backend']} backend (a model id, path or name).")
    cls = generator_class(spec)
    cls.check_generation_kwargs(kwargs.get("generation_kwargs") or {}, f"{role}.generation_kwargs")
    if spec["backend"] == "transformers":
        kwargs["model_name_or_path"] = kwargs.pop("model")
    return _construct(role, cls, kwargs)


def build_role(role: str, spec: dict | str | None, cache_path: str | None = None) -> Rewriter | Reviewer | Expert:
    """
    The `role` ("rewriter", "reviewer" or "expert") described by `spec`; LLM roles answer through a
    [`ResponseCache`] at `cache_path` when given. Bad settings raise here, before any query.
    """
    spec = dict(parse_role_spec(role, spec))
    if spec["backend"] == "rules":
        from .rules import RulesExpert, RulesReviewer, RulesRewriter

        rewriter_settings = (CONSTRAINT_FAMILIES_KEY, "slip_rate")
        settings = {key: spec[key] for key in spec if role == "rewriter" and key in rewriter_settings}
        extra = [key for key in spec if key != "backend" and key not in settings]
        if extra:
            raise ValueError(
                f"`{role}.{extra[0]}`: the rules backend takes no settings other than the rewriter's "
                f"{', '.join(f'`{key}`' for key in rewriter_settings)}."
            )
        return {"rewriter": RulesRewriter, "reviewer": RulesReviewer, "expert": RulesExpert}[role](**settings)

    from .cache import ResponseCache
    from .cached_generator import CachedGenerator
    from .llm import LLMExpert, LLMReviewer, LLMRewriter

    role_kwargs = {"generation_kwargs": spec.pop("generation_kwargs", None)}
    # Before the generator is built: a bad key must not cost a model load
    generator_class(spec).check_generation_kwargs(role_kwargs["generation_kwargs"] or {}, f"{role}.generation_kwargs")
    for key in ROLE_SETTINGS[role]:
        if key in spec:
            role_kwargs[key] = spec.pop(key)
    compare_with_rules = spec.pop("compare_with_rules", True) if role == "reviewer" else False
    if role_kwargs.get("verdict_mode", "parse") not in VERDICT_MODES:
        raise ValueError(
            f"`reviewer.verdict_mode` is {role_kwargs['verdict_mode']!r}; valid modes: {', '.join(VERDICT_MODES)}."
        )
    generator = build_generator(role, spec)
    if cache_path is not None:
        generator = CachedGenerator(generator, ResponseCache(cache_path))
    if compare_with_rules:
        from .rules import RulesReviewer

        role_kwargs["reference"] = RulesReviewer()
    return {"rewriter": LLMRewriter, "reviewer": LLMReviewer, "expert": LLMExpert}[role](generator, **role_kwargs)
