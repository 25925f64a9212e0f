"""The endpoint backend against a real server: `transformers serve` with the tiny chat model (see `serve.py`)."""

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from instrl_trl.backends.accounting import QueryAccounting
from instrl_trl.backends.endpoint import EndpointGenerator
from instrl_trl.backends.transformers import TransformersGenerator
from tests.backends.tiny_causal_lm import training_corpus


# Startup of the session's server (about 20 s idle, more on a loaded machine) counts in the first test's time
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROMPTS = training_corpus()[:6]


def make_generator(server, **kwargs) -> EndpointGenerator:
    kwargs.setdefault("timeout", 60.0)
    kwargs.setdefault("max_retries", 0)  # a real server that fails here is a bug to see, not to retry
    return EndpointGenerator(server.model_dir, base_url=server.base_url, server="transformers", **kwargs)


def test_happy_path_matches_the_local_backend(transformers_serve, tiny_causal_lm):
    generator = make_generator(transformers_serve)
    generations = generator.generate(PROMPTS[:3], max_tokens=6)
    # Greedy decoding of the same weights and chat template: the server answers what the local backend answers
    local = TransformersGenerator(tiny_causal_lm, dtype="float32", max_new_tokens=6, device="cpu")
    local = local.generate(PROMPTS[:3])
    assert [g.text for g in generations] == [g.text for g in local]
    assert all(g.text and not g.usage.failed and not g.usage.cached for g in generations)


def test_usage_is_counted_from_the_server(transformers_serve, tiny_causal_lm):
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    generations = make_generator(transformers_serve).generate(PROMPTS[:3], max_tokens=5)
    expected_prompt_tokens = [
        len(tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True)["input_ids"])
        for p in PROMPTS[:3]
    ]
    assert [g.usage.prompt_tokens for g in generations] == expected_prompt_tokens
    # The random model never ends early on these prompts: every completion is cut at the limit
    assert [g.usage.completion_tokens for g in generations] == [5, 5, 5]
    accounting = QueryAccounting()
    accounting.record("expert", len(generations), [g.usage for g in generations])
    usage = accounting.usage("expert")
    assert (usage.queries, usage.paid_queries, usage.failures) == (3, 3, 0)
    assert (usage.prompt_tokens, usage.completion_tokens) == (sum(expected_prompt_tokens), 15)
    assert usage.seconds == pytest.approx(sum(g.usage.seconds for g in generations)) and usage.seconds > 0


def test_temperature_samples_only_when_the_server_is_told(transformers_serve):
    greedy = make_generator(transformers_serve).generate(PROMPTS[:1], max_tokens=8)[0].text
    sampling = {"temperature": 1.0, "max_tokens": 8}
    # Told through its `generation_config` field: seeds give samples, the same seed the same sample
    told = make_generator(transformers_serve, generation_kwargs=sampling)
    samples = [told.generate(PROMPTS[:1], seeds=[seed])[0].text for seed in (1, 2, 3, 1)]
    assert samples[0] == samples[3]
    assert len(set(samples[:3])) == 3 and greedy not in samples
    # Sent as to a generic OpenAI server, `temperature` alone leaves `transformers serve` greedy
    untold = EndpointGenerator(
        transformers_serve.model_dir, base_url=transformers_serve.base_url, generation_kwargs=sampling, timeout=60.0
    )
    assert untold.generate(PROMPTS[:1], seeds=[1])[0].text == greedy


def test_concurrent_requests_come_back_in_order(transformers_serve):
    one_at_a_time = make_generator(transformers_serve, max_concurrency=1)
    expected = [one_at_a_time.generate([prompt], max_tokens=4)[0].text for prompt in PROMPTS]
    concurrent = make_generator(transformers_serve, max_concurrency=4)
    generations = concurrent.generate(PROMPTS, max_tokens=4)
    assert [g.text for g in generations] == expected
    assert not any(g.usage.failed for g in generations)


def test_systemone_verdicts_always_parse(transformers_serve):
    from instrl_trl.backends.llm import LLMReviewer

    # The pipeline reads its option labels (A, B by default) as single tokens; the tiny word-level vocabulary has no
    # "A", so the model's decision config names two of its words (read when the first request comes)
    decision = Path(transformers_serve.model_dir) / "decision.json"
    decision.write_text(json.dumps({"labels": {"choice": ["note", "city"]}}))
    generator = make_generator(transformers_serve)
    assert generator.choice_modes == ("systemone",)
    reviewer = LLMReviewer(generator)  # the server's mode by default
    assert reviewer.verdict_mode == "systemone"
    originals, rewrites = PROMPTS[:3], [prompt + " Explain each step." for prompt in PROMPTS[:3]]
    reviews = reviewer.review(originals, rewrites)
    assert not any(review.usage.failed for review in reviews)
    for review in reviews:
        assert review.information_gain == (review.probability >= 0.5)
        assert review.verdict == ("Not Equal" if review.information_gain else "Equal")
    scores = generator.score_choices(
        [reviewer.build_prompt(originals[0], rewrites[0])], ("Not Equal", "Equal"), "systemone"
    )
    assert sum(scores[0].probabilities) == pytest.approx(1.0, abs=1e-4)
    assert scores[0].probabilities[0] == pytest.approx(reviews[0].probability)
    assert scores[0].usage.prompt_tokens > 0
    with pytest.raises(ValueError, match="Verdict mode 'logprobs' is not offered by server 'transformers'"):
        generator.score_choices(["a"], ("Not Equal", "Equal"), "logprobs")
