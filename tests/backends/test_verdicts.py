import math

import pytest

from instrl_trl.backends.verdicts import (
    VERDICTS,
    answered_choice,
    check_first_words,
    choice_probabilities,
    first_token_probabilities,
    parse_verdict,
    systemone_body,
    systemone_probabilities,
)
from tests.backends.openai_server import chat_output


def test_parse_verdict():
    assert parse_verdict("Equal") is False
    assert parse_verdict("not   equal") is True
    assert parse_verdict("Equal..") is None  # one trailing period only
    assert parse_verdict("Unequal") is None
    assert parse_verdict(None) is None


def test_choice_probabilities_is_a_stable_softmax():
    assert choice_probabilities([-1000.0, -1000.0 - math.log(4)]) == pytest.approx((0.8, 0.2))


def test_first_token_probabilities_share_the_mass_of_each_verdict():
    top = [(" Not", math.log(0.6)), ("Equal", math.log(0.2)), (" equal", math.log(0.1)), ("Sure", math.log(0.05))]
    assert first_token_probabilities(chat_output("Not", top), VERDICTS) == pytest.approx((0.6 / 0.9, 0.3 / 0.9))
    # A token that starts both words (none here) or neither word gives nothing; no verdict token at all is a failure
    assert first_token_probabilities(chat_output("Sure", [("Sure", -0.1), ("I", -2.0)]), VERDICTS) is None
    assert first_token_probabilities(chat_output("Not", None), VERDICTS) is None


@pytest.mark.parametrize("logprob", [None, "high", 1e6])
def test_a_top_logprob_that_is_not_one_is_refused(logprob):
    # The endpoint turns the `ValueError` into a malformed answer: the query fails, the run goes on
    top = [("Not", math.log(0.6)), ("Equal", logprob)]
    with pytest.raises(ValueError, match="not a log-probability"):
        first_token_probabilities(chat_output("Not", top), VERDICTS)
    # Float rounding just above 0 is a certain token
    assert first_token_probabilities(chat_output("Not", [("Not", 1e-9)]), VERDICTS) == (1.0, 0.0)


def test_a_constrained_answer_without_logprobs_is_certain_of_what_it_names():
    assert answered_choice(" Equal\n", VERDICTS) == (0.0, 1.0)
    assert answered_choice("Equal parts", VERDICTS) is None


def test_first_token_scoring_needs_distinct_first_words():
    with pytest.raises(ValueError, match="must start with distinct words"):
        check_first_words(["Equal", "Equal parts"])
    check_first_words(VERDICTS)


def test_systemone_request_and_answer():
    chat = [{"role": "system", "content": "Judge."}, {"role": "user", "content": "Same?"}]
    body = systemone_body("m", chat, VERDICTS)
    assert body["state"] == "Judge.\n\nSame?"
    assert body["questions"]["answer"]["criteria"] == {"Not Equal": None, "Equal": None}
    answer = {"answers": {"answer": {"probabilities": {"Equal": 0.3, "Not Equal": 0.7}}}}
    assert systemone_probabilities(answer, VERDICTS) == (0.7, 0.3)
    with pytest.raises(ValueError, match="No probability per choice"):
        systemone_probabilities({"answers": {}}, VERDICTS)
