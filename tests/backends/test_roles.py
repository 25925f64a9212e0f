import pytest

from instrl_trl.backends.cached_generator import CachedGenerator
from instrl_trl.backends.llm import LLMExpert, LLMReviewer, LLMRewriter
from instrl_trl.backends.roles import build_role, parse_role_spec
from instrl_trl.backends.rules import RulesExpert, RulesReviewer, RulesRewriter
from tests.backends.openai_server import OpenAIServer


@pytest.mark.parametrize(
    ("role", "cls"), [("rewriter", RulesRewriter), ("reviewer", RulesReviewer), ("expert", RulesExpert)]
)
def test_missing_spec_is_the_rules_engine(role, cls):
    assert isinstance(build_role(role, None), cls)
    assert isinstance(build_role(role, "rules"), cls)
    assert isinstance(build_role(role, {"backend": "rules"}), cls)


def test_json_string_from_the_command_line():
    assert parse_role_spec("rewriter", '{"backend": "endpoint", "model": "m"}') == {
        "backend": "endpoint",
        "model": "m",
    }


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"backend": "openai"}, r"`rewriter.backend` is 'openai'; valid backends: rules, transformers, endpoint"),
        ({"backend": "endpoint", "model": "m", "token": "hf_x"}, r"`rewriter.token`: tokens never go in a recipe"),
        ({"backend": "endpoint", "model": "m", "api_key": "x"}, r"`rewriter.api_key`"),
        ({"backend": "endpoint", "base_url": "http://127.0.0.1:9"}, r"`rewriter.model` is required"),
        ({"backend": "endpoint", "model": "m", "concurrency": 4}, r"`rewriter.concurrency` is not a setting"),
        ({"backend": "rules", "model": "m"}, r"`rewriter.model`: the rules backend takes no settings"),
        ('{"backend": ', r"`rewriter` is not valid JSON"),
    ],
)
def test_bad_specs_fail_with_the_field_named(spec, match):
    with pytest.raises(ValueError, match=match):
        build_role("rewriter", spec)


def test_token_env_must_be_set(monkeypatch):
    monkeypatch.delenv("INSTRL_TEST_MISSING_TOKEN", raising=False)
    with pytest.raises(ValueError, match="INSTRL_TEST_MISSING_TOKEN"):
        build_role("reviewer", {"backend": "endpoint", "model": "m", "token_env": "INSTRL_TEST_MISSING_TOKEN"})


@pytest.mark.parametrize(
    ("role", "cls"), [("rewriter", LLMRewriter), ("reviewer", LLMReviewer), ("expert", LLMExpert)]
)
def test_endpoint_roles_answer_through_the_cache(tmp_path, role, cls):
    with OpenAIServer() as server:
        spec = {"backend": "endpoint", "model": "served", "base_url": server.base_url, "max_retries": 0}
        built = build_role(role, spec, cache_path=str(tmp_path / "cache.sqlite"))
        assert isinstance(built, cls)
        assert isinstance(built.generator, CachedGenerator)
        assert (tmp_path / "cache.sqlite").exists()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        # The model path does not exist: the check must come before any load
        (
            {"backend": "transformers", "model": "/no/such/model", "generation_kwargs": {"max_tokens": 8}},
            "`reviewer.generation_kwargs.max_tokens` is not a generation setting of the transformers backend: write "
            "`max_new_tokens`".replace(".", r"\."),
        ),
        (
            {
                "backend": "endpoint",
                "model": "m",
                "base_url": "http://127.0.0.1:9",
                "generation_kwargs": {"max_new_tokens": 8},
            },
            "`reviewer.generation_kwargs.max_new_tokens` is not a generation setting of the endpoint backend: write "
            "`max_tokens`".replace(".", r"\."),
        ),
        (
            {"backend": "endpoint", "model": "m", "generation_kwargs": {"do_sample": True}},
            r"`reviewer.generation_kwargs.do_sample`.*set `temperature` above 0",
        ),
    ],
)
def test_generation_kwargs_checked_before_anything_is_loaded(spec, match):
    with pytest.raises(ValueError, match=match):
        build_role("reviewer", spec)


def test_generator_generation_kwargs_checked_with_the_role_named():
    from instrl_trl.backends.roles import build_generator

    spec = {"backend": "transformers", "model": "/no/such/model", "generation_kwargs": {"max_tokens": 8}}
    with pytest.raises(ValueError, match=r"`generator.generation_kwargs.max_tokens`"):
        build_generator("generator", spec)


def test_roles_on_the_same_model_share_it_with_their_own_limits(tiny_causal_lm):
    spec = {"backend": "transformers", "model": tiny_causal_lm, "device": "cpu"}
    rewriter = build_role("rewriter", spec)
    reviewer = build_role("reviewer", spec)
    assert reviewer.generator.model is rewriter.generator.model
    assert reviewer.generation_kwargs["max_new_tokens"] == 8 and rewriter.generator.max_new_tokens == 256
    (review,) = reviewer.review(["Name a river."], ["Name a long river in Europe."])
    assert review.usage.completion_tokens <= 8


def test_role_settings_reach_the_roles(tiny_causal_lm):
    spec = {"backend": "transformers", "model": tiny_causal_lm, "device": "cpu"}
    reviewer = build_role("reviewer", {**spec, "verdict_mode": "likelihood", "threshold": 0.7})
    assert (reviewer.verdict_mode, reviewer.threshold) == ("likelihood", 0.7)
    assert isinstance(reviewer.reference, RulesReviewer)  # agreement with the rules reviewer is counted by default
    assert build_role("reviewer", {**spec, "compare_with_rules": False}).reference is None
    rewriter = build_role("rewriter", {**spec, "missing_constraint": "eliminate", "system_prompt": None})
    assert (rewriter.missing_constraint, rewriter.system_prompt) == ("eliminate", None)
    (review,) = reviewer.review(["Name a river."], ["Name a long river in Peru and its length."])
    assert review.probability is not None and review.information_gain == (review.probability >= 0.7)
    # The rules reviewer sees new content words ("long", "peru", "length"): a gain
    assert reviewer.statistics()["agreement"] == float(review.information_gain)


def test_an_unknown_verdict_mode_fails_before_the_model_loads():
    with pytest.raises(ValueError, match="`reviewer.verdict_mode` is 'vibes'; valid modes"):
        build_role("reviewer", {"backend": "transformers", "model": "/no/such/model", "verdict_mode": "vibes"})
