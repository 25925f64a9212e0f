import random

import pytest

from instrl_trl.constraints import (
    SAMPLED_INSTRUCTION_IDS,
    InvalidReferenceError,
    RowVerdict,
    check_row,
    instruction_ids,
    loose_variants,
)


ENGLISH = "the committee met on tuesday to discuss the budget for next year and agreed on a careful plan for the town"

# instruction id -> (kwargs, a response that follows it, a response that does not)
CASES = {
    "length_constraints:number_words": (
        {"num_words": 10, "relation": "at least"},
        "one two three four five six seven eight nine ten eleven",
        "far too short",
    ),
    "length_constraints:number_sentences": (
        {"num_sentences": 3, "relation": "less than"},
        "The sky is blue. The grass is green.",
        "The sky is blue. The grass is green. The sun is hot. The sea is wide.",
    ),
    "length_constraints:number_paragraphs": ({"num_paragraphs": 2}, "First part.\n***\nSecond part.", "One part."),
    "detectable_format:number_bullet_lists": ({"num_bullets": 2}, "Points:\n* one\n* two", "Points:\n* one"),
    "detectable_format:number_highlighted_sections": ({"num_highlights": 2}, "*one* and *two*", "*one* only"),
    "detectable_format:multiple_sections": (
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1\nfirst\nSection 2\nsecond",
        "Section 1\nonly one",
    ),
    "detectable_format:json_format": ({}, '```json\n{"answer": 1}\n```', "answer: 1"),
    "detectable_format:title": ({}, "<<A Title>>\nBody.", "Body without a title."),
    "keywords:existence": ({"keywords": ["apple", "river"]}, "An apple by the river.", "An apple."),
    "keywords:forbidden_words": ({"forbidden_words": ["apple"]}, "A pear, pineapples.", "An Apple."),
    "keywords:frequency": ({"keyword": "cat", "frequency": 2, "relation": "at least"}, "A cat and a cat.", "A cat."),
    "keywords:letter_frequency": (
        {"letter": "z", "let_frequency": 2, "let_relation": "at least"},
        "Zebras at the zoo.",
        "A zebra.",
    ),
    "detectable_content:postscript": ({"postscript_marker": "P.S."}, "Hello.\nP.S. Goodbye.", "Hello. Goodbye."),
    "detectable_content:number_placeholders": ({"num_placeholders": 2}, "Meet [name] at [address].", "Meet [name]."),
    "startend:end_checker": (
        {"end_phrase": "Any other questions?"},
        "That is all. Any other questions?",
        "Any other questions? That is all.",
    ),
    "startend:quotation": ({}, '"All of it quoted."', 'Not "all" of it quoted.'),
    "change_case:english_lowercase": ({}, ENGLISH, ENGLISH.capitalize()),
    "change_case:english_capital": ({}, ENGLISH.upper(), ENGLISH.upper().replace("BUDGET", "budget")),
    "punctuation:no_comma": ({}, "No commas here.", "Commas, here."),
    "language:response_language": (
        {"language": "fr"},
        "La rivière passe près du vieux moulin et les enfants la suivent jusqu'à la mer.",
        ENGLISH,
    ),
    # the ids the rules engine never samples: compared with lm-eval all the same
    "change_case:capital_word_frequency": (
        {"capital_frequency": 2, "capital_relation": "at least"},
        "The NASA and ESA teams met.",
        "The Nasa team met the ESA team.",
    ),
    "combination:two_responses": ({}, "First answer.\n******\nSecond answer.", "Only one answer."),
    "detectable_format:constrained_response": ({}, "My answer is yes.", "Perhaps, it depends."),
    "length_constraints:nth_paragraph_first_word": (
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        "First paragraph here.\n\nThen the second one.",
        "First paragraph here.\n\nAfter that, the second one.",
    ),
}
# ids whose rows need the prompt (`combination:repeat_prompt`, tested below) or are not sampled
UNSAMPLED_CASES = {
    "change_case:capital_word_frequency",
    "combination:two_responses",
    "detectable_format:constrained_response",
    "length_constraints:nth_paragraph_first_word",
}


def lm_eval_verdict(response, instruction_id_list, kwargs_list, prompt="prompt") -> RowVerdict:
    from lm_eval.tasks.ifeval.utils import process_results

    doc = {"key": 0, "prompt": prompt, "instruction_id_list": instruction_id_list, "kwargs": kwargs_list}
    results = process_results(doc, [response])
    return RowVerdict(strict=results["inst_level_strict_acc"], loose=results["inst_level_loose_acc"])


def test_cases_cover_every_instruction():
    assert set(CASES) - UNSAMPLED_CASES == set(SAMPLED_INSTRUCTION_IDS)
    assert set(CASES) | {"combination:repeat_prompt"} == set(instruction_ids())


@pytest.mark.parametrize("instruction_id", sorted(CASES))
def test_pass_and_fail(instruction_id):
    kwargs, passing, failing = CASES[instruction_id]
    assert check_row(passing, [instruction_id], [kwargs]) == RowVerdict(strict=[True], loose=[True])
    assert check_row(failing, [instruction_id], [kwargs]).strict == [False]
    for response in (passing, failing):
        assert check_row(response, [instruction_id], [kwargs]) == lm_eval_verdict(response, [instruction_id], [kwargs])
    assert lm_eval_verdict(passing, [instruction_id], [kwargs]).strict == [True]  # the case tests something


def test_loose_variants_are_lm_evals_eight():
    assert loose_variants("Sure:\n*body*\nBye") == [
        "Sure:\n*body*\nBye",
        "Sure:\nbody\nBye",
        "*body*\nBye",
        "Sure:\n*body*",
        "*body*",
        "body\nBye",
        "Sure:\nbody",
        "body",
    ]


@pytest.mark.parametrize(
    "instruction_id, kwargs, response",
    [
        # a chatty first line breaks strict; the variant without the first line passes
        ("change_case:english_lowercase", {}, "Sure! Here It Is:\n" + ENGLISH),
        ("detectable_format:json_format", {}, 'Here is the JSON:\n{"answer": 1}'),
        ("startend:quotation", {}, 'Here you go:\n"All of it quoted."'),
        # markdown asterisks break strict; the variant without asterisks passes
        ("startend:end_checker", {"end_phrase": "Any other questions?"}, "That is all. **Any other questions?**"),
        ("keywords:existence", {"keywords": ["apple pie"]}, "I love **apple** pie."),
        # a closing line breaks strict; the variant without the last line passes
        ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two\n* and a closing remark"),
    ],
)
def test_strict_fails_where_loose_passes(instruction_id, kwargs, response):
    verdict = check_row(response, [instruction_id], [kwargs])
    assert verdict == RowVerdict(strict=[False], loose=[True])
    assert verdict == lm_eval_verdict(response, [instruction_id], [kwargs])


def test_row_with_several_instructions():
    ids = ["punctuation:no_comma", "detectable_format:title", "startend:end_checker"]
    kwargs = [{}, {}, {"end_phrase": "Any other questions?"}]
    response = "Sure, here it is:\n<<Plan>>\nNo commas in the body. Any other questions?"
    verdict = check_row(response, ids, kwargs)
    assert verdict == RowVerdict(strict=[False, True, True], loose=[True, True, True])
    assert (verdict.prompt_level_strict, verdict.prompt_level_loose) == (False, True)
    assert verdict == lm_eval_verdict(response, ids, kwargs)


def test_empty_response_follows_nothing():
    assert check_row("  \n", ["punctuation:no_comma"], [{}]) == RowVerdict(strict=[False], loose=[False])


def test_none_values_are_dropped_as_in_ifeval_rows():
    kwargs = {"num_bullets": 2, "keywords": None, "language": None, "end_phrase": None}
    assert check_row("* one\n* two", ["detectable_format:number_bullet_lists"], [kwargs]).strict == [True]


def test_repeat_prompt_uses_prompt_to_repeat():
    ids, kwargs = ["combination:repeat_prompt"], [{"prompt_to_repeat": "Write a poem."}]
    response = "Write a poem. Roses are red."
    assert check_row(response, ids, kwargs, prompt="Write a poem. First repeat the request.").strict == [True]
    assert check_row("Roses are red.", ids, kwargs).strict == [False]
    assert check_row(response, ids, kwargs) == lm_eval_verdict(response, ids, kwargs)


def test_letter_outside_a_z_is_counted_as_given():
    # lm-eval replaces '#' by a random ASCII letter; we count '#'.
    kwargs = [{"letter": "#", "let_frequency": 3, "let_relation": "at least"}]
    assert check_row("### heading", ["keywords:letter_frequency"], kwargs).strict == [True]
    assert check_row("## heading", ["keywords:letter_frequency"], kwargs).strict == [False]


@pytest.mark.parametrize(
    "instruction_id_list, kwargs_list, match",
    [
        (["keywords:nonexistent"], [{}], "unknown instruction id 'keywords:nonexistent'"),
        (["detectable_format:title"], [{"num_bullets": 2}], r"unknown \['num_bullets'\]"),
        (["length_constraints:number_words"], [{"num_words": 100}], r"missing \['relation'\]"),
        (["length_constraints:number_words"], [{"num_words": 100, "relation": "about"}], "rejects"),
        (["detectable_format:number_bullet_lists"], [{"num_bullets": 0}], "missing"),  # lm-eval drops falsy values
        (["detectable_format:number_bullet_lists"], [{"num_bullets": -1}], "at random"),
        (
            ["length_constraints:nth_paragraph_first_word"],
            [{"num_paragraphs": 3, "nth_paragraph": 4, "first_word": "so"}],
            "at random",
        ),
        (["keywords:letter_frequency"], [{"letter": "ab", "let_frequency": 1, "let_relation": "at least"}], "one"),
        (["language:response_language"], [{"language": "xx"}], "rejects"),
        (["punctuation:no_comma", "detectable_format:title"], [{}], "same length"),
        (["punctuation:no_comma"], ["not a dict"], "must be a dict"),
        (["keywords:existence"], [{"keywords": ["(apple"]}], "check fails"),  # not a regular expression
    ],
)
def test_invalid_rows_raise(instruction_id_list, kwargs_list, match):
    with pytest.raises(InvalidReferenceError, match=match):
        check_row("Some response.", instruction_id_list, kwargs_list)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_row_lm_eval_would_redraw_is_refused_whatever_the_random_state(seed):
    # lm-eval redraws `nth_paragraph` from randint(1, num_paragraphs + 1): 1 time in 3 here it lands on 3 again.
    # Whether the row is refused must not depend on that draw, and checking must not move the caller's stream.
    kwargs = [{"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "so"}]
    random.seed(seed)
    state = random.getstate()
    for _ in range(10):
        with pytest.raises(InvalidReferenceError, match="at random"):
            check_row("A.\n\nB.\n\nSo C.", ["length_constraints:nth_paragraph_first_word"], kwargs)
    assert random.getstate() == state
