import logging

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from instrl_trl.backends.base import Generation, TextGenerator
from instrl_trl.backends.transformers import TransformersGenerator
from tests.backends.tiny_causal_lm import training_corpus


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    """Six prompts of very different lengths (about 5 to 100 tokens once in the chat template)."""
    seeds = training_corpus()
    return ["Hi.", seeds[0], " ".join(seeds[1:3]), " ".join(seeds[3:7]), seeds[10], " ".join(seeds[20:30])]


def test_is_text_generator(tiny_causal_lm):
    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=4)
    assert isinstance(generator, TextGenerator)
    assert generator.backend == "transformers"
    assert generator.model_name == tiny_causal_lm
    generations = generator.generate(["Write a poem."])
    assert len(generations) == 1 and isinstance(generations[0], Generation) and isinstance(generations[0].text, str)
    assert generator.generate([]) == []


def test_batched_equals_sequential(tiny_causal_lm, prompts):
    # Batches of 4 over 6 prompts sorted by length: one batch mixes 5- and 50-token prompts, so left padding matters
    generator = TransformersGenerator(tiny_causal_lm, batch_size=4, max_new_tokens=12)
    batched = generator.generate(prompts)
    sequential = [generator.generate([prompt])[0] for prompt in prompts]
    assert [generation.text for generation in batched] == [generation.text for generation in sequential]
    for one, other in zip(batched, sequential, strict=True):
        assert (one.usage.prompt_tokens, one.usage.completion_tokens) == (
            other.usage.prompt_tokens,
            other.usage.completion_tokens,
        )
    # Greedy decoding: the same answers again
    assert [generation.text for generation in generator.generate(prompts)] == [g.text for g in batched]


def test_chat_template_applied(tiny_causal_lm):
    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=4)
    (text,) = generator.format_prompts(["Write a poem."])
    assert text.startswith("<|user|>Write a poem.") and text.endswith("<|assistant|>")
    input_ids = generator.tokenizer(text, add_special_tokens=False)["input_ids"]
    user_id, assistant_id = generator.tokenizer.convert_tokens_to_ids(["<|user|>", "<|assistant|>"])
    assert input_ids[0] == user_id and input_ids[-1] == assistant_id
    (generation,) = generator.generate(["Write a poem."])
    assert generation.usage.prompt_tokens == len(input_ids)


def test_raw_prompt_without_chat_template(tiny_causal_lm):
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    tokenizer.chat_template = None
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    generator = TransformersGenerator(model=model, tokenizer=tokenizer, max_new_tokens=4)
    assert generator.model_name == tiny_causal_lm  # from the model's `name_or_path`
    assert generator.format_prompts(["Write a poem."]) == ["Write a poem."]
    (generation,) = generator.generate(["Write a poem."])
    assert generation.usage.prompt_tokens == len(tokenizer("Write a poem.")["input_ids"]) == 4


def test_pad_token_defaults_to_eos(tiny_causal_lm, prompts):
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    tokenizer.pad_token = None
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    generator = TransformersGenerator(model=model, tokenizer=tokenizer, max_new_tokens=6)
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.padding_side == "left"
    reference = TransformersGenerator(tiny_causal_lm, dtype="float32", max_new_tokens=6)
    assert [g.text for g in generator.generate(prompts)] == [g.text for g in reference.generate(prompts)]


def test_stops_at_eos(tiny_causal_lm, prompts):
    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=12)
    (full,) = generator.generate([prompts[1]])
    assert full.usage.completion_tokens == 12  # the random model never says `<|end|>` on this prompt
    assert full.finish_reason == "length"
    # Make the 4th generated token the end of sequence: the completion must stop there, that token counted, not shown
    full_ids = generator.tokenizer(full.text, add_special_tokens=False)["input_ids"]
    stop = next(i for i in range(3, len(full_ids)) if full_ids[i] not in full_ids[:i])
    (stopped,) = generator.generate([prompts[1]], eos_token_id=full_ids[stop])
    assert stopped.usage.completion_tokens == stop + 1
    assert stopped.text == generator.tokenizer.decode(full_ids[:stop])
    assert stopped.finish_reason == "stop"
    # In a batch, rows that stop early are padded: the padding is neither decoded nor counted
    batch = generator.generate(prompts, eos_token_id=full_ids[stop])
    assert batch[1] == Generation(stopped.text, batch[1].usage, "stop")
    assert batch[1].usage.completion_tokens == stop + 1
    assert max(g.usage.completion_tokens for g in batch) <= 12


def test_max_new_tokens(tiny_causal_lm, prompts):
    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=5)
    assert all(g.usage.completion_tokens <= 5 for g in generator.generate(prompts))
    # `min_new_tokens` forbids EOS before it: exactly that many tokens
    for generation in generator.generate(prompts, max_new_tokens=3, min_new_tokens=3):
        assert generation.usage.completion_tokens == 3
        assert len(generation.text.split()) <= 3


def test_usage(tiny_causal_lm, prompts):
    generator = TransformersGenerator(tiny_causal_lm, batch_size=4, max_new_tokens=6)
    generations = generator.generate(prompts)
    encoded = [
        generator.tokenizer(text, add_special_tokens=False)["input_ids"] for text in generator.format_prompts(prompts)
    ]
    assert [g.usage.prompt_tokens for g in generations] == [len(ids) for ids in encoded]  # padding not counted
    assert all(0 < g.usage.completion_tokens <= 6 for g in generations)
    assert all(g.usage.seconds > 0 and not g.usage.cached and not g.usage.failed for g in generations)
    # Wall time is shared evenly within a batch: two batches (4 + 2 prompts), so two distinct shares
    assert len({g.usage.seconds for g in generations}) == 2


def test_cache_identity(tiny_causal_lm):
    generator = TransformersGenerator(
        tiny_causal_lm, dtype="bfloat16", max_new_tokens=8, generation_kwargs={"top_p": 0.9, "do_sample": True}
    )
    assert generator.model.dtype == torch.bfloat16
    assert generator.cache_identity() == {
        "backend": "transformers",
        "model": tiny_causal_lm,
        "revision": None,
        "dtype": "bfloat16",
        "max_new_tokens": 8,
        "generation_kwargs": {"do_sample": True, "top_p": 0.9},
        "seed": None,
    }
    assert TransformersGenerator(tiny_causal_lm, dtype="auto").cache_identity()["dtype"] == "float32"


def test_sampling_with_seed(tiny_causal_lm, prompts):
    sampling = {"do_sample": True, "temperature": 1.0}
    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=8, generation_kwargs=sampling, seed=1)
    first = [g.text for g in generator.generate(prompts)]
    assert [g.text for g in generator.generate(prompts)] == first
    other = TransformersGenerator(tiny_causal_lm, max_new_tokens=8, generation_kwargs=sampling, seed=2)
    assert [g.text for g in other.generate(prompts)] != first


def test_bad_model_path(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ValueError, match="no-such-model") as error:
        TransformersGenerator(missing)
    assert isinstance(error.value.__cause__, (OSError, ValueError))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"dtype": "float33"}, "dtype"),
        ({"dtype": "tensor"}, "dtype"),
    ],
)
def test_invalid_arguments(tiny_causal_lm, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransformersGenerator(tiny_causal_lm, **kwargs)


def test_model_needs_tokenizer(tiny_causal_lm):
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    with pytest.raises(ValueError, match="tokenizer"):
        TransformersGenerator(model=model)
    with pytest.raises(TypeError, match="dtype"):
        TransformersGenerator(tiny_causal_lm, dtype=16)
    with pytest.raises(ValueError, match="model_name_or_path"):
        TransformersGenerator()


def test_temperature_zero_means_greedy_even_when_sampling_is_configured(tiny_causal_lm):
    # The reviewer asks for temperature 0 (the OpenAI convention); transformers would reject it when sampling
    from instrl_trl.backends.transformers import TransformersGenerator

    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=4, generation_kwargs={"do_sample": True})
    greedy = TransformersGenerator(tiny_causal_lm, max_new_tokens=4)
    prompt = ["Describe a city you would like to visit."]
    assert generator.generate(prompt, temperature=0.0)[0].text == greedy.generate(prompt)[0].text


def test_generators_on_the_same_model_share_one_copy(tiny_causal_lm):
    import gc
    import weakref

    rewriter = TransformersGenerator(tiny_causal_lm, max_new_tokens=12, device="cpu")
    reviewer = TransformersGenerator(tiny_causal_lm, max_new_tokens=2, device="cpu")
    assert reviewer.model is rewriter.model and reviewer.tokenizer is rewriter.tokenizer
    # Each keeps its own limits
    assert [g.usage.completion_tokens for g in reviewer.generate(["Hi."])] == [2]
    assert rewriter.generate(["Hi."], min_new_tokens=12)[0].usage.completion_tokens == 12
    # Another dtype is another copy
    other_dtype = "float32" if rewriter.model.dtype == torch.bfloat16 else "bfloat16"
    assert TransformersGenerator(tiny_causal_lm, dtype=other_dtype, device="cpu").model is not rewriter.model
    # The copy goes with its last generator
    model = weakref.ref(rewriter.model)
    del rewriter, reviewer
    gc.collect()
    assert model() is None


def test_seeds_pick_the_samples(tiny_causal_lm, prompts):
    sampling = {"do_sample": True, "temperature": 1.0}
    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=8, generation_kwargs=sampling)
    assert generator.samples({}) and not generator.samples({"temperature": 0.0})
    first = [g.text for g in generator.generate(prompts[:2], seeds=[1, 2])]
    assert [g.text for g in generator.generate(prompts[:2], seeds=[1, 2])] == first
    assert [g.text for g in generator.generate(prompts[:2], seeds=[3, 4])] != first
    # Greedy decoding ignores them
    greedy = TransformersGenerator(tiny_causal_lm, max_new_tokens=8)
    assert not greedy.samples({})
    texts = [[g.text for g in greedy.generate(prompts[:2], seeds=seeds)] for seeds in ([1, 2], [3, 4])]
    assert texts[0] == texts[1]


@pytest.mark.parametrize(
    ("key", "fix"),
    [("max_tokens", "write `max_new_tokens`"), ("seed", "set the role's `seed`"), ("temprature", "GenerationConfig")],
)
def test_generation_kwargs_are_checked(tiny_causal_lm, key, fix):
    with pytest.raises(ValueError, match=rf"`generation_kwargs.{key}` is not a generation setting.*{fix}") as error:
        TransformersGenerator(tiny_causal_lm, generation_kwargs={key: 1})
    assert "max_new_tokens, max_time" in str(error.value)  # the valid keys are listed
    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=2)
    with pytest.raises(ValueError, match=rf"`generation_kwargs.{key}`"):
        generator.generate(["Hi."], **{key: 1})


def test_score_choices_is_the_normalised_likelihood_of_each_whole_answer(tiny_causal_lm):
    generator = TransformersGenerator(tiny_causal_lm, batch_size=3)  # 2 prompts x 2 choices: batches of 3 and 1
    prompts = ["Is the sky blue?", [{"role": "system", "content": "Judge."}, {"role": "user", "content": "Two?"}]]
    choices = ("Not Equal", "Equal")
    scores = generator.score_choices(prompts, choices, "likelihood")

    # The same log-likelihoods, one unpadded sequence at a time
    eos = generator.model.generation_config.eos_token_id
    eos = eos if isinstance(eos, int) else eos[0]
    for prompt, score in zip(prompts, scores, strict=True):
        (text,) = generator.format_prompts([prompt])
        prompt_ids = generator.tokenizer(text, add_special_tokens=False)["input_ids"]
        values = []
        for choice in choices:
            targets = generator.tokenizer(choice, add_special_tokens=False)["input_ids"] + [eos]
            with torch.no_grad():
                logits = generator.model(torch.tensor([prompt_ids + targets])).logits[0]
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            values.append(sum(float(log_probs[len(prompt_ids) - 1 + i, t]) for i, t in enumerate(targets)))
        expected = torch.softmax(torch.tensor(values), dim=0).tolist()
        assert score.probabilities == pytest.approx(expected, abs=1e-4)
        assert score.text == choices[expected.index(max(expected))]
        assert score.usage.prompt_tokens == len(prompt_ids) and score.usage.completion_tokens == 0


def _two_pass_probabilities(generator, prompts, choices, batch_size):
    """
    The scoring as it was before the prompt's cache was reused: every (prompt, choice) row a whole right-padded
    sequence, the prompt run once per choice.
    """
    eos = generator._eos_token_ids(None)[0]
    prompt_ids = generator.tokenizer(generator.format_prompts(prompts), add_special_tokens=False)["input_ids"]
    choice_ids = [generator.tokenizer(choice, add_special_tokens=False)["input_ids"] + [eos] for choice in choices]
    rows = [(p, c) for p in range(len(prompts)) for c in range(len(choices))]
    values = torch.zeros(len(prompts), len(choices))
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        sequences = [prompt_ids[p] + choice_ids[c] for p, c in batch]
        width = max(len(sequence) for sequence in sequences)
        pad = generator.tokenizer.pad_token_id
        input_ids = torch.tensor([sequence + [pad] * (width - len(sequence)) for sequence in sequences])
        mask = torch.tensor([[1] * len(sequence) + [0] * (width - len(sequence)) for sequence in sequences])
        with torch.no_grad():
            log_probs = torch.log_softmax(generator.model(input_ids=input_ids, attention_mask=mask).logits, dim=-1)
        for row, (p, c) in enumerate(batch):
            first, targets = len(prompt_ids[p]), choice_ids[c]
            scores = log_probs[row, first - 1 : first - 1 + len(targets)].gather(1, torch.tensor(targets)[:, None])
            values[p, c] = scores.sum()
    return torch.softmax(values, dim=1)


def test_score_choices_runs_each_prompt_once_and_scores_as_two_passes_did(tiny_causal_lm, prompts):
    # 6 prompts of 5 to 100 tokens: batches 4 + 2. float32, since the default dtype follows the CPU (bfloat16 where it
    # is faster), and a continuation on a bfloat16 cache rounds otherwise than one pass over the whole sequence
    generator = TransformersGenerator(tiny_causal_lm, batch_size=4, dtype="float32")
    choices = ("Not Equal", "Equal", "Equal parts")  # the last one continues the second: the EOS must tell them apart
    widths = []  # the length of every forward pass's input
    hook = generator.model.register_forward_hook(
        lambda module, args, kwargs, output: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        scores = generator.score_choices(prompts, choices, "likelihood")
    finally:
        hook.remove()

    expected = _two_pass_probabilities(generator, prompts, choices, batch_size=4)
    actual = torch.tensor([score.probabilities for score in scores])
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)
    # Each batch of prompts runs once, padded to its longest; then each choice runs only its tokens (but the EOS)
    encoded = generator.tokenizer(generator.format_prompts(prompts), add_special_tokens=False)["input_ids"]
    fed = [len(generator.tokenizer(choice, add_special_tokens=False)["input_ids"]) for choice in choices]
    assert widths == [max(map(len, encoded[:4])), *fed, max(map(len, encoded[4:])), *fed]


def test_score_choices_takes_only_likelihood(tiny_causal_lm):
    generator = TransformersGenerator(tiny_causal_lm)
    assert generator.choice_modes == ("likelihood",)
    with pytest.raises(ValueError, match="scores choices by `likelihood`, not 'logprobs'"):
        generator.score_choices(["a"], ("Not Equal", "Equal"), "logprobs")
    assert generator.score_choices([], ("Not Equal", "Equal"), "likelihood") == []


def test_chat_messages_go_through_the_chat_template(tiny_causal_lm):
    generator = TransformersGenerator(tiny_causal_lm, max_new_tokens=4)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write a poem."}]
    (text,) = generator.format_prompts([messages])
    expected = generator.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == expected and "Be brief." in text
    assert generator.format_prompts(["Write a poem."]) != [text]


def test_a_reasoning_models_thinking_is_left_out_and_an_answer_of_only_thinking_fails(
    tiny_causal_lm, monkeypatch, caplog
):
    # The tiny model writes no `<think>`: its decoded completions are replaced by a reasoning model's
    generator = TransformersGenerator(tiny_causal_lm, batch_size=4, max_new_tokens=4)
    completions = iter(["<think>Three rivers.</think>\n\nNile, Amazon", "<think>Which rivers are long", "Volga"])
    monkeypatch.setattr(generator.tokenizer, "decode", lambda ids, **kwargs: next(completions))
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.transformers"):
        generations = generator.generate(["Hi.", "Name rivers.", "One more river, please."])
    texts = {generation.text for generation in generations}
    assert texts == {"Nile, Amazon", None, "Volga"}
    [cut] = [generation for generation in generations if generation.text is None]
    assert cut.usage.failed and cut.usage.completion_tokens > 0
    assert sum(generation.usage.failed for generation in generations) == 1
    assert "1 of 3 answers" in caplog.text and "max_new_tokens" in caplog.text
    # The stage's failure message quotes the backend's last error, with the fix
    assert generator.last_error.startswith("1 of 3 answers were all thinking")
    assert "max_new_tokens" in generator.last_error


def test_chat_template_kwargs_reach_the_template_and_the_role_settings(tiny_causal_lm, tmp_path):
    # A template that reads a variable, as Qwen3's reads `enable_thinking`
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_lm)
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
        "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n{% endif %}"
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm)
    thinking = TransformersGenerator(model=model, tokenizer=tokenizer, max_new_tokens=4)
    quiet = TransformersGenerator(
        model=model, tokenizer=tokenizer, max_new_tokens=4, chat_template_kwargs={"enable_thinking": False}
    )
    assert thinking.format_prompts(["Name a river."]) == ["Name a river.\n"]
    assert quiet.format_prompts(["Name a river."]) == ["Name a river.\n<think>\n\n</think>\n"]
    # They change the answers, so the cache tells them apart; unset, the identity is what it was before the setting
    assert quiet.cache_identity()["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in thinking.cache_identity()

    # A role's setting, checked when the role is built
    from instrl_trl.backends.roles import build_role

    spec = {"backend": "transformers", "model": tiny_causal_lm, "chat_template_kwargs": {"enable_thinking": False}}
    expert = build_role("expert", spec, str(tmp_path / "cache.sqlite"))
    assert expert.generator.generator.chat_template_kwargs == {"enable_thinking": False}
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="`chat_template_kwargs` is set, but .* has no chat template"):
        TransformersGenerator(model=model, tokenizer=tokenizer, chat_template_kwargs={"enable_thinking": False})
