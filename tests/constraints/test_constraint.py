import doctest
import json

import pytest

from instrl_trl.constraints import Constraint, check_row


def test_constraint_description_and_check():
    constraint = Constraint("punctuation:no_comma")
    assert constraint.description() == "In your entire response, refrain from the use of any commas."
    assert constraint.check("No commas here.")
    assert not constraint.check("Commas, here.")

    bullets = Constraint("detectable_format:number_bullet_lists", {"num_bullets": 2})
    assert "exactly 2 bullet points" in bullets.description()
    assert bullets.check("* first\n* second")
    assert not bullets.check("* only one")

    words = Constraint("length_constraints:number_words", {"num_words": 5, "relation": "less than"})
    assert words.description() == "Answer with less than 5 words."
    assert words.check("Too short.")
    assert not words.check("This answer has far too many words.")


def test_check_is_the_metrics_strict_verdict():
    # `verified` (generation) and the benchmark score come from one code path
    constraint = Constraint("startend:end_checker", {"end_phrase": "Any other questions?"})
    for response in ("Done. Any other questions?", "Done. **Any other questions?**", "  "):
        verdict = check_row(response, [constraint.instruction_id], [constraint.kwargs])
        assert constraint.check(response) == verdict.strict[0]
    assert not constraint.check("  ")


def test_letter_outside_a_z_is_described_and_counted_as_given():
    constraint = Constraint(
        "keywords:letter_frequency", {"letter": "#", "let_frequency": 3, "let_relation": "at least"}
    )
    assert constraint.description() == "In your response, the letter # should appear at least 3 times."
    assert constraint.check("### heading")
    assert not constraint.check("## heading")


def test_constraint_round_trip():
    constraint = Constraint("keywords:existence", {"keywords": ["river", "bridge"]})
    data = constraint.to_dict()
    assert data == {"instruction_id": "keywords:existence", "kwargs": {"keywords": ["river", "bridge"]}}
    assert Constraint.from_dict(json.loads(json.dumps(data))) == constraint
    assert hash(Constraint.from_dict(data)) == hash(constraint)
    # IFEval rows carry `None` for the arguments of other ids: they are dropped (by lm-eval's rule, as the metric does)
    assert (
        Constraint.from_dict({"instruction_id": "detectable_format:title", "kwargs": {"num_words": None}}).kwargs == {}
    )


def test_constraint_errors():
    with pytest.raises(ValueError, match="valid ids: .*punctuation:no_comma"):
        Constraint("punctuation:semicolons")
    with pytest.raises(ValueError, match=r"punctuation:no_comma.*unknown \['num_words'\]"):
        Constraint("punctuation:no_comma", {"num_words": 3})
    with pytest.raises(ValueError, match=r"number_bullet_lists.*missing \['num_bullets'\]"):
        Constraint("detectable_format:number_bullet_lists", {})
    with pytest.raises(ValueError, match=r"number_bullet_lists.*missing \['num_bullets'\]"):
        Constraint("detectable_format:number_bullet_lists", {"num_bullets": 0})  # empty: dropped, as lm-eval does
    with pytest.raises(ValueError, match="language:response_language.*rejects"):
        Constraint("language:response_language", {"language": "xx"})
    # lm-eval would redraw `nth_paragraph` at random, so the text and the check would vary
    with pytest.raises(ValueError, match="nth_paragraph_first_word.*at random"):
        Constraint(
            "length_constraints:nth_paragraph_first_word",
            {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "so"},
        )


def test_docstring_examples():
    from instrl_trl.constraints import checking, constraint

    runner = doctest.DocTestRunner()
    for module in (constraint, checking):
        for test in doctest.DocTestFinder().find(module):
            runner.run(test)
    assert runner.summarize(verbose=False).attempted >= 5
    assert runner.summarize(verbose=False).failed == 0
