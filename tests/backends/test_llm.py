import logging

import pytest

from instrl_trl.backends.accounting import QueryAccounting
from instrl_trl.backends.base import Generation, RewriteRequest, TextGenerator, Usage
from instrl_trl.backends.cache import ResponseCache
from instrl_trl.backends.cached_generator import CachedGenerator
from instrl_trl.backends.llm import (
    REPLY_ONLY,
    REVIEWER_SYSTEM_PROMPT,
    REWRITER_SYSTEM_PROMPT,
    LLMExpert,
    LLMReviewer,
    LLMRewriter,
    load_reviewer_template,
)
from instrl_trl.constraints import Constraint
from instrl_trl.environment import InstructionEnv
from instrl_trl.operations import DEFAULT_OPERATIONS


USAGE = Usage(prompt_tokens=10, completion_tokens=2, seconds=0.25)
CONSTRAINT = Constraint("punctuation:no_comma")


class ScriptedGenerator(TextGenerator):
    """Returns the scripted answers in order (`None` is a failed query) and records every call."""

    backend = "scripted"
    model_name = "scripted-model"

    def __init__(self, answers, finish_reason=None):
        self.answers = list(answers)
        self.finish_reason = finish_reason
        self.calls = []
        self.seeds = []

    def generate(self, prompts, seeds=None, **generation_kwargs):
        self.calls.append((list(prompts), generation_kwargs))
        self.seeds.append(seeds)
        answers, self.answers = self.answers[: len(prompts)], self.answers[len(prompts) :]
        return [
            Generation(None, Usage(failed=True)) if a is None else Generation(a, USAGE, self.finish_reason)
            for a in answers
        ]


def request(instruction="Describe the water cycle.", operation="deepening", constraints=()):
    return RewriteRequest(instruction, DEFAULT_OPERATIONS[operation], constraints=constraints)


# LLMRewriter


def test_rewriter_sends_each_operation_prompt_in_one_batch():
    generator = ScriptedGenerator(["  Explain why the water cycle matters for climate.\n", "Describe rivers."])
    rewriter = LLMRewriter(generator, generation_kwargs={"temperature": 0.7})
    rewrites = rewriter.rewrite([request(constraints=(CONSTRAINT,)), request("Name a river.", "breadth")])

    ((prompts, kwargs),) = generator.calls
    assert kwargs == {"temperature": 0.7}
    # A chat: a real system message, then the operation's prompt without its completion-style closing label
    for prompt, (operation, instruction) in zip(
        prompts, [("deepening", "Describe the water cycle."), ("breadth", "Name a river.")], strict=True
    ):
        system, user = prompt
        assert system == {"role": "system", "content": REWRITER_SYSTEM_PROMPT}
        rendered = DEFAULT_OPERATIONS[operation].render_prompt(instruction).rstrip()
        label = "#Rewritten Prompt#:" if operation == "deepening" else "#Created Prompt#:"
        assert rendered.endswith(label)
        assert user["role"] == "user"
        assert user["content"] == rendered.removesuffix(label).rstrip() + "\n\n" + REPLY_ONLY
    # The carried constraint was dropped by the model: it is stated again, word for word
    assert rewrites[0].instruction == ("Explain why the water cycle matters for climate. " + CONSTRAINT.description())
    assert rewriter.constraint_counts == {"restated": 1}
    assert rewrites[0].constraints == (CONSTRAINT,)
    assert rewrites[0].usage == USAGE
    assert rewriter.model_name == "scripted-model"


def test_the_rewriter_cleans_with_its_prompt_and_the_finish_reason():
    generator = ScriptedGenerator(
        ["Rewrite the prompt with the following method:\nDescribe the water cycle in 3 steps. Then give an"],
        finish_reason="length",
    )
    rewriter = LLMRewriter(generator)
    (rewrite,) = rewriter.rewrite([RewriteRequest("Describe the water cycle.", DEFAULT_OPERATIONS["deepening"])])
    assert rewrite.instruction == "Describe the water cycle in 3 steps."
    assert rewrite.cleanups == ("echoed_template_line", "truncated")
    assert rewriter.cleanup_counts == {"echoed_template_line": 1, "truncated": 1}


def test_rewriter_without_system_prompt_sends_the_operation_prompt_as_is():
    generator = ScriptedGenerator(["Explain why rivers flood."])
    LLMRewriter(generator, system_prompt=None).rewrite([request()])
    assert generator.calls[0][0] == [DEFAULT_OPERATIONS["deepening"].render_prompt("Describe the water cycle.")]


def test_failed_rewrite_is_empty_and_keeps_constraints():
    (rewrite,) = LLMRewriter(ScriptedGenerator([None])).rewrite([request(constraints=(CONSTRAINT,))])
    assert rewrite.instruction == ""
    assert rewrite.constraints == (CONSTRAINT,)
    assert rewrite.usage.failed


def test_roles_do_not_call_the_generator_for_an_empty_batch():
    generator = ScriptedGenerator([])
    assert LLMRewriter(generator).rewrite([]) == []
    assert LLMReviewer(generator).review([], []) == []
    assert LLMExpert(generator).respond([]) == []
    assert generator.calls == []


def test_wrong_number_of_generations_raises():
    with pytest.raises(RuntimeError, match="one per prompt"):
        LLMRewriter(ScriptedGenerator(["only one"])).rewrite([request(), request()])


# LLMReviewer


@pytest.mark.parametrize(
    "answer, information_gain",
    [
        ("Equal", False),
        ("Not Equal", True),
        (" not equal. ", True),
        ("**Not Equal**", True),
        ('"Equal"', False),
        ("`equal`", False),
        ('"Not Equal".', True),
        ("NOT EQUAL\n", True),
    ],
)
def test_reviewer_parses_the_two_verdicts(answer, information_gain, caplog):
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.llm"):
        (review,) = LLMReviewer(ScriptedGenerator([answer])).review(["Name a river."], ["Name a long river in Peru."])
    assert review.information_gain is information_gain
    assert review.verdict == answer
    assert review.usage == USAGE
    assert caplog.records == []


@pytest.mark.parametrize(
    "answer", ["Equal, but the second prompt is longer.", "Yes", "", None, "Not Equal. The second adds a country."]
)
def test_reviewer_counts_anything_else_as_a_failed_query(answer, caplog):
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.llm"):
        (review,) = LLMReviewer(ScriptedGenerator([answer])).review(["Name a river."], ["Name a long river in Peru."])
    assert review.information_gain is False
    assert review.verdict == (answer or "")
    assert review.usage.failed
    assert len(caplog.records) == 1 and caplog.records[0].levelno == logging.WARNING
    if answer:
        assert repr(answer[:80]) in caplog.text


def test_reviewer_warning_shows_only_the_first_80_characters(caplog):
    answer = "Equal" + "x" * 200
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.llm"):
        LLMReviewer(ScriptedGenerator([answer])).review(["a"], ["b"])
    assert repr(answer[:80]) in caplog.text and answer[:81] not in caplog.text


def test_reviewer_prompt_and_default_temperature():
    generator = ScriptedGenerator(["Equal", "Not Equal"])
    reviewer = LLMReviewer(generator)
    reviews = reviewer.review(["Name a river.", "Name a lake."], ["Name a long river.", "Name a deep lake in Asia."])
    assert [review.information_gain for review in reviews] == [False, True]
    ((prompts, kwargs),) = generator.calls
    assert kwargs == {"temperature": 0.0}
    assert prompts[1] == [
        {"role": "system", "content": REVIEWER_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": load_reviewer_template()
            .replace("{original}", "Name a lake.")
            .replace("{rewritten}", "Name a deep lake in Asia."),
        },
    ]
    assert [review.probability for review in reviews] == [0.0, 1.0]  # strict parsing is sure of what it read
    assert reviewer.verdict_mode == "parse"  # the only mode a generator that scores nothing offers
    assert reviewer.model_name == "scripted-model"


def test_reviewer_generation_kwargs_override_the_default():
    generator = ScriptedGenerator(["Equal"])
    LLMReviewer(generator, generation_kwargs={"temperature": 0.2, "max_new_tokens": 4}).review(["a"], ["b"])
    assert generator.calls[0][1] == {"temperature": 0.2, "max_new_tokens": 4}


def test_reviewer_custom_template_is_filled_in_one_pass():
    generator = ScriptedGenerator(["Equal"])
    reviewer = LLMReviewer(
        generator, prompt_template='A: {original}\nB: {rewritten}\nJSON: {"k": 1}', system_prompt=None
    )
    reviewer.review(["say {rewritten}"], ["say more"])
    assert generator.calls[0][0] == ['A: say {rewritten}\nB: say more\nJSON: {"k": 1}']


def test_reviewer_template_without_placeholders_raises():
    with pytest.raises(ValueError, match=r"`prompt_template` lacks the placeholders \{rewritten\}"):
        LLMReviewer(ScriptedGenerator([]), prompt_template="Compare {original} with the other one.")


def test_reviewer_needs_one_rewrite_per_original():
    with pytest.raises(ValueError, match="one per item"):
        LLMReviewer(ScriptedGenerator([])).review(["a", "b"], ["c"])


# LLMExpert


def test_expert_answers_and_failed_queries_are_empty():
    generator = ScriptedGenerator(["  The water cycle is driven by the sun.\n", None])
    expert = LLMExpert(generator, generation_kwargs={"max_new_tokens": 64})
    answers = expert.respond(["Describe the water cycle.", "Name a river."])
    assert generator.calls == [(["Describe the water cycle.", "Name a river."], {"max_new_tokens": 64})]
    assert answers[0].text == "The water cycle is driven by the sun."
    assert answers[0].usage == USAGE
    assert answers[1].text == "" and answers[1].usage.failed
    assert expert.model_name == "scripted-model"


def test_expert_system_prompt_comes_before_each_instruction():
    generator = ScriptedGenerator(["ok"])
    LLMExpert(generator, system_prompt="You are a careful assistant.").respond(["Name a river."])
    assert generator.calls[0][0] == ["You are a careful assistant.\n\nName a river."]


# End to end: the environment over cached LLM roles


class EchoLLM(TextGenerator):
    """Judges every comparison "Not Equal" and rewrites every instruction by adding a distinct detail."""

    backend = "echo"
    model_name = "echo-model"

    def __init__(self):
        self.num_prompts_asked = 0

    def generate(self, prompts, seeds=None, **generation_kwargs):
        self.num_prompts_asked += len(prompts)
        texts = [prompt[-1]["content"] for prompt in prompts]  # the user's message of each chat
        return [
            Generation(
                "Not Equal" if "#Second Prompt#" in text else f"Explain case {len(text)} with concrete examples.",
                Usage(prompt_tokens=len(text.split()), completion_tokens=5, seconds=0.01),
            )
            for text in texts
        ]


def test_environment_step_with_cached_llm_roles(tmp_path):
    seeds = ["Describe the water cycle.", "Name a river.", "Plan a trip to a city."]
    actions = ["deepening", "breadth", "concretizing"]
    accounting, llm, results = QueryAccounting(), EchoLLM(), []
    for _ in range(2):  # the second run opens the cache file again, as a resumed or repeated run would
        with ResponseCache(tmp_path / "responses.sqlite") as cache:
            rewriter = LLMRewriter(CachedGenerator(llm, cache), generation_kwargs={"temperature": 0.7})
            reviewer = LLMReviewer(CachedGenerator(llm, cache))
            env = InstructionEnv(DEFAULT_OPERATIONS, rewriter, reviewer, accounting=accounting)
            env.reset(seeds)
            results.append(env.step(actions))

    first, second = results
    assert first.accepted == [True, True, True]
    assert first.queries == [2, 2, 2]
    assert second == first
    assert llm.num_prompts_asked == 6  # 3 rewrites + 3 reviews, all in the first run
    # queries asked count both runs; the second run's are all cache hits
    assert accounting["rewriter"] == accounting["reviewer"] == 6
    rewriter_usage, reviewer_usage = accounting.usage("rewriter"), accounting.usage("reviewer")
    assert rewriter_usage.cache_hits == reviewer_usage.cache_hits == 3
    assert rewriter_usage.paid_queries == reviewer_usage.paid_queries == 3
    assert rewriter_usage.failures == reviewer_usage.failures == 0
    assert rewriter_usage.seconds == pytest.approx(0.03)  # hits take no time


# Sampling seeds, limits and settings checked up front


def test_rewriter_sends_each_request_seed():
    generator = ScriptedGenerator(["A", "B"])
    requests = [RewriteRequest("Name a river.", DEFAULT_OPERATIONS["deepening"], seed=seed) for seed in (7, 8)]
    LLMRewriter(generator).rewrite(requests)
    assert generator.seeds == [[7, 8]]


def test_expert_retry_asks_for_a_new_sample(tmp_path):
    from tests.backends.test_cache import CountingGenerator

    generator = CountingGenerator()
    with ResponseCache(tmp_path / "responses.sqlite") as cache:
        expert = LLMExpert(CachedGenerator(generator, cache), generation_kwargs={"temperature": 0.7})
        first = expert.respond(["Name a river.", "Name a lake."])
        retry = expert.respond(["Name a river."])  # a verification retry of the first instruction
        assert first[0].text.endswith("(sample 0)") and retry[0].text.endswith("(sample 1)")
        assert not retry[0].usage.cached
        # A rerun asks the same seeds in the same order: all from the cache
        rerun = LLMExpert(CachedGenerator(generator, cache), generation_kwargs={"temperature": 0.7})
        assert [a.text for a in rerun.respond(["Name a river.", "Name a lake."])] == [a.text for a in first]
        assert rerun.respond(["Name a river."])[0].text == retry[0].text
    assert generator.seeds == [[0, 0], [1]]


class LimitedGenerator(ScriptedGenerator):
    max_tokens_key = "max_new_tokens"


def test_reviewer_has_a_length_limit_of_its_own():
    generator = LimitedGenerator(["Equal", "Equal"])
    LLMReviewer(generator).review(["a"], ["b"])
    assert generator.calls[-1][1] == {"temperature": 0.0, "max_new_tokens": 8}
    LLMReviewer(generator, generation_kwargs={"max_new_tokens": 3}).review(["a"], ["b"])
    assert generator.calls[-1][1]["max_new_tokens"] == 3
    # A backend without a length limit gets none
    plain = ScriptedGenerator(["Equal"])
    LLMReviewer(plain).review(["a"], ["b"])
    assert plain.calls[-1][1] == {"temperature": 0.0}


class CheckingGenerator(ScriptedGenerator):
    @classmethod
    def check_generation_kwargs(cls, generation_kwargs, where="generation_kwargs"):
        for key in generation_kwargs:
            if key == "max_tokens":
                raise ValueError(f"`{where}.{key}` is not valid")


@pytest.mark.parametrize("role", [LLMRewriter, LLMReviewer, LLMExpert])
def test_roles_check_their_generation_kwargs(role):
    name = role.__name__.removeprefix("LLM").lower()
    with pytest.raises(ValueError, match=rf"`{name}.generation_kwargs.max_tokens`"):
        role(CheckingGenerator([]), generation_kwargs={"max_tokens": 8})


# Verifiable constraints from an LLM rewriter


def constraint_request(seed=3, constraints=()):
    return RewriteRequest("Describe the water cycle.", DEFAULT_OPERATIONS["add_constraints"], (), constraints, seed)


def drawn_constraint(seed=3, existing=()):
    import random

    from instrl_trl.constraints import sample_constraint

    return sample_constraint(existing, random.Random(seed))


def test_add_constraints_gives_the_model_the_exact_words_and_keeps_a_stated_constraint():
    constraint = drawn_constraint()
    rewrite_text = f"Describe the water cycle for a child. {constraint.description()}"
    generator = ScriptedGenerator([f"#Rewritten Prompt#: {rewrite_text}"])
    rewriter = LLMRewriter(generator)
    (rewrite,) = rewriter.rewrite([constraint_request()])
    user = generator.calls[0][0][0][-1]["content"]
    assert f'"{constraint.description()}"' in user and "word for word" in user
    assert rewrite.instruction == rewrite_text
    assert rewrite.constraints == (constraint,)
    assert rewrite.cleanups == ("label",)
    assert rewriter.constraint_counts == {"stated": 1}
    assert rewriter.cleanup_counts == {"label": 1}


def test_a_constraint_the_model_dropped_is_appended_verbatim():
    constraint = drawn_constraint()
    rewriter = LLMRewriter(ScriptedGenerator(["Describe the water cycle for a child."]))
    (rewrite,) = rewriter.rewrite([constraint_request()])
    assert rewrite.instruction == f"Describe the water cycle for a child. {constraint.description()}"
    assert rewrite.constraints == (constraint,) and rewrite.rejection is None
    assert rewriter.constraint_counts == {"appended": 1}


def test_a_constraint_the_model_dropped_can_eliminate_the_rewrite():
    rewriter = LLMRewriter(
        ScriptedGenerator(["Describe the water cycle for a child."]), missing_constraint="eliminate"
    )
    (rewrite,) = rewriter.rewrite([constraint_request()])
    assert rewrite.rejection == "constraint_missing"
    assert rewrite.constraints == ()
    assert rewriter.constraint_counts == {"eliminated": 1}


def test_the_new_constraint_conflicts_with_none_carried():
    from instrl_trl.constraints import conflicts

    carried = drawn_constraint(seed=1)
    constraint = drawn_constraint(seed=5, existing=(carried,))
    rewriter = LLMRewriter(ScriptedGenerator(["Describe the water cycle."]))
    (rewrite,) = rewriter.rewrite([constraint_request(seed=5, constraints=(carried,))])
    assert rewrite.constraints == (carried, constraint)
    assert constraint.instruction_id not in conflicts(carried.instruction_id)
    # the carried one was dropped by the model too, so both are stated again
    assert carried.description() in rewrite.instruction and constraint.description() in rewrite.instruction


def test_the_llm_rewriter_refuses_test_constraints_before_any_query():
    generator = ScriptedGenerator(["Describe the water cycle."] * 8)
    with pytest.raises(ValueError, match=r"`rewriter.constraint_families` names `ifbench`.*contaminates.*iftrain"):
        LLMRewriter(generator, constraint_families=["ifeval", "ifbench"])
    with pytest.raises(ValueError, match="rewriter.constraint_families"):
        LLMRewriter(ScriptedGenerator([]), constraint_families=["ifbenchh"])
    assert generator.calls == []


def test_other_operations_add_no_constraint():
    generator = ScriptedGenerator(["Explain why the water cycle matters."])
    (rewrite,) = LLMRewriter(generator).rewrite([request()])
    assert rewrite.constraints == ()
    assert "word for word" not in generator.calls[0][0][0][-1]["content"]


def test_missing_constraint_must_be_append_or_eliminate():
    with pytest.raises(ValueError, match="`missing_constraint` is 'drop'; valid values: append, eliminate"):
        LLMRewriter(ScriptedGenerator([]), missing_constraint="drop")


def test_environment_eliminates_a_rewrite_its_rewriter_rejected():
    rewriter = LLMRewriter(
        ScriptedGenerator(["Describe the water cycle for a child."]), missing_constraint="eliminate"
    )
    env = InstructionEnv(DEFAULT_OPERATIONS, rewriter, LLMReviewer(ScriptedGenerator([])))
    env.reset(["Describe the water cycle."])
    result = env.step(["add_constraints"])
    assert result.elimination == ["constraint_missing"]
    assert result.queries == [1]  # no review for an eliminated rewrite


# Verdicts with a probability


class ScoringGenerator(ScriptedGenerator):
    """Scores the verdicts with the scripted P("Not Equal") values, in order (`None` is a failed query)."""

    choice_modes = ("likelihood",)

    def score_choices(self, prompts, choices, mode):
        from instrl_trl.backends.base import ChoiceScores

        self.calls.append((list(prompts), {"choices": tuple(choices), "mode": mode}))
        answers, self.answers = self.answers[: len(prompts)], self.answers[len(prompts) :]
        return [
            ChoiceScores(None, None, Usage(failed=True)) if p is None else ChoiceScores((p, 1 - p), "x", USAGE)
            for p in answers
        ]


def test_reviewer_scores_the_two_verdicts_and_applies_the_threshold():
    generator = ScoringGenerator([0.9, 0.55, 0.2])
    reviewer = LLMReviewer(generator, threshold=0.6)
    assert reviewer.verdict_mode == "likelihood"  # the generator's first mode
    reviews = reviewer.review(["a", "b", "c"], ["a2", "b2", "c2"])
    assert generator.calls[0][1] == {"choices": ("Not Equal", "Equal"), "mode": "likelihood"}
    assert [r.probability for r in reviews] == [0.9, 0.55, 0.2]
    assert [r.information_gain for r in reviews] == [True, False, False]
    assert [r.verdict for r in reviews] == ["Not Equal", "Equal", "Equal"]
    assert not any(r.usage.failed for r in reviews)


def test_a_failed_scoring_counts_as_no_gain_and_failed(caplog):
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.llm"):
        (review,) = LLMReviewer(ScoringGenerator([None])).review(["a"], ["b"])
    assert review.information_gain is False and review.probability is None and review.usage.failed
    assert "failed" in caplog.text


def test_reviewer_refuses_a_mode_its_generator_does_not_offer():
    with pytest.raises(ValueError, match="`reviewer.verdict_mode` is 'systemone', which the scripted backend"):
        LLMReviewer(ScoringGenerator([]), verdict_mode="systemone")
    with pytest.raises(ValueError, match="valid modes: likelihood, logprobs, choice, systemone, parse"):
        LLMReviewer(ScoringGenerator([]), verdict_mode="vibes")
    with pytest.raises(ValueError, match="`reviewer.threshold` is 1.5"):
        LLMReviewer(ScoringGenerator([]), threshold=1.5)
    # parse stays available everywhere
    assert LLMReviewer(ScoringGenerator([]), verdict_mode="parse").verdict_mode == "parse"


def test_reviewer_reports_agreement_with_a_reference_and_spread():
    from instrl_trl.backends.rules import RulesReviewer

    originals = ["Name a river.", "Name a lake."]
    rewrites = ["Name a river.", "Name a deep lake in Asia with its depth."]  # rules: Equal, Not Equal
    reviewer = LLMReviewer(ScoringGenerator([0.8, 0.9, 0.1]), reference=RulesReviewer())
    reviewer.review(originals, rewrites)
    reviewer.review(["a"], ["b"])  # rules: Equal (nothing added); judge: Equal
    stats = reviewer.statistics()
    assert stats["reviews"] == stats["scored"] == 3 and stats["failed"] == 0
    assert stats["gains"] == 2
    assert stats["agreement"] == pytest.approx(2 / 3)
    assert stats["p_gain_mean"] == pytest.approx(0.6)
    assert stats["p_gain_std"] == pytest.approx(((0.2**2 + 0.3**2 + 0.5**2) / 3) ** 0.5)


def test_a_judge_whose_probability_hardly_varies_is_reported(caplog):
    reviewer = LLMReviewer(ScoringGenerator([0.51] * 20))
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.llm"):
        reviewer.review(["a"] * 15, ["b"] * 15)
        assert "hardly varies" not in caplog.text  # too few reviews to say
        reviewer.review(["a"] * 5, ["b"] * 5)
    assert caplog.text.count("hardly varies") == 1
    assert reviewer.statistics()["p_gain_std"] == pytest.approx(0.0, abs=1e-6)


def test_a_judge_that_discriminates_is_not_reported(caplog):
    reviewer = LLMReviewer(ScoringGenerator([0.1, 0.9] * 10))
    with caplog.at_level(logging.WARNING, logger="instrl_trl.backends.llm"):
        reviewer.review(["a"] * 20, ["b"] * 20)
    assert "hardly varies" not in caplog.text


def test_environment_records_the_probability_per_step_and_per_evolution():
    rewriter = LLMRewriter(ScriptedGenerator(["Explain why the water cycle matters.", "Name a long river in Peru."]))
    env = InstructionEnv(DEFAULT_OPERATIONS, rewriter, LLMReviewer(ScoringGenerator([0.7, 0.3])))
    env.reset(["Describe the water cycle.", "Name a river."])
    result = env.step(["deepening", "concretizing"])
    assert result.gain_probability == [0.7, 0.3]
    assert result.accepted == [True, False]
    assert result.review_failed == [False, False]
    assert env.episodes[0].accepted[0].review_probability == 0.7
