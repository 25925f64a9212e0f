import pytest

from instrl_trl.backends.accounting import QueryAccounting
from instrl_trl.backends.base import Answer, Expert, Usage
from instrl_trl.constraints import Constraint
from instrl_trl.generation.evolve import Candidate
from instrl_trl.generation.responses import AnsweredCandidate, ExpertUnavailableError, answer_and_verify


NO_COMMA = Constraint("punctuation:no_comma", {})
LOWERCASE = Constraint("change_case:english_lowercase", {})


def candidate(instruction, constraints=()):
    return Candidate(instruction, "seed", 0, ("add_constraints",), 1, 1.0, tuple(constraints))


class ScriptedExpert(Expert):
    """Answers each instruction with the next of its scripted answers, and records every call."""

    model_name = "scripted-expert"

    def __init__(self, answers: dict[str, list[str]], usage: Usage | None = None):
        self.answers = {instruction: list(texts) for instruction, texts in answers.items()}
        self.usage = usage
        self.calls: list[list[str]] = []

    def respond(self, instructions):
        self.calls.append(list(instructions))
        return [Answer(self.answers[instruction].pop(0), self.usage) for instruction in instructions]


def test_a_passing_answer_is_verified():
    item = candidate("Describe rain. No commas.", [NO_COMMA])
    expert = ScriptedExpert({item.instruction: ["Rain falls from clouds."]})
    [row] = answer_and_verify(expert, [item], QueryAccounting())
    assert row == AnsweredCandidate(item, "Rain falls from clouds.", verified=True, attempts=1)
    assert len(expert.calls) == 1


def test_without_constraints_verified_is_none():
    item = candidate("Describe rain.")
    expert = ScriptedExpert({item.instruction: ["Rain, mostly, falls."]})  # a comma: no constraint to break
    [row] = answer_and_verify(expert, [item], QueryAccounting())
    assert row.verified is None
    assert row.attempts == 1


def test_a_failing_answer_is_asked_again_and_may_then_pass():
    item = candidate("Describe rain in lowercase without commas.", [NO_COMMA, LOWERCASE])
    answers = ["Rain falls, then stops.", "rain falls, then stops.", "rain falls and then stops."]
    expert = ScriptedExpert({item.instruction: answers})
    [row] = answer_and_verify(expert, [item], QueryAccounting(), verification_retries=2)
    assert row.response == "rain falls and then stops."
    assert row.verified is True
    assert row.attempts == 3
    assert expert.calls == [[item.instruction]] * 3


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_an_answer_that_keeps_failing_is_dropped(retries):
    failing = candidate("Describe rain. No commas.", [NO_COMMA])
    passing = candidate("Describe snow. No commas.", [NO_COMMA])
    expert = ScriptedExpert(
        {failing.instruction: ["Rain, again."] * (retries + 1), passing.instruction: ["Snow is cold."]}
    )
    rows = answer_and_verify(expert, [failing, passing], QueryAccounting(), verification_retries=retries)
    assert [row.candidate for row in rows] == [passing]
    # the first call answers both; each retry asks only for the failing one
    assert expert.calls == [[failing.instruction, passing.instruction]] + [[failing.instruction]] * retries


def test_keep_unverified_keeps_the_last_failing_answer():
    failing = candidate("Describe rain. No commas.", [NO_COMMA])
    expert = ScriptedExpert({failing.instruction: ["Rain, first.", "Rain, second."]})
    rows = answer_and_verify(expert, [failing], QueryAccounting(), verification_retries=1, keep_unverified=True)
    assert rows == [AnsweredCandidate(failing, "Rain, second.", verified=False, attempts=2)]


def test_empty_answers_are_dropped():
    empty = candidate("Describe rain.")
    blank = candidate("Describe hail.")
    answered = candidate("Describe snow.")
    expert = ScriptedExpert({empty.instruction: [""], blank.instruction: ["  \n"], answered.instruction: ["Cold."]})
    rows = answer_and_verify(expert, [empty, answered, blank], QueryAccounting())
    assert [row.candidate for row in rows] == [answered]
    assert len(expert.calls) == 1  # a failed query is not retried as a verification failure


def test_an_empty_retry_keeps_the_earlier_failing_answer_only_when_asked():
    item = candidate("Describe rain. No commas.", [NO_COMMA])
    expert = ScriptedExpert({item.instruction: ["Rain, first.", ""]})
    [row] = answer_and_verify(expert, [item], QueryAccounting(), verification_retries=1, keep_unverified=True)
    assert (row.response, row.verified) == ("Rain, first.", False)
    assert len(expert.calls) == 2
    expert = ScriptedExpert({item.instruction: ["Rain, first.", ""]})
    assert answer_and_verify(expert, [item], QueryAccounting(), verification_retries=1) == []


def test_all_answers_empty_raises():
    items = [candidate("Describe rain."), candidate("Describe snow.", [NO_COMMA])]
    expert = ScriptedExpert({item.instruction: [""] for item in items}, usage=Usage(failed=True))
    with pytest.raises(ExpertUnavailableError, match=r"scripted-expert.*any of 2 instructions"):
        answer_and_verify(expert, items, QueryAccounting())


def test_no_candidates_asks_nothing():
    expert = ScriptedExpert({})
    accounting = QueryAccounting()
    assert answer_and_verify(expert, [], accounting) == []
    assert expert.calls == []
    assert accounting["expert"] == 0


def test_expert_queries_are_accounted():
    failing = candidate("Describe rain. No commas.", [NO_COMMA])
    passing = candidate("Describe snow.")
    empty = candidate("Describe hail.")
    expert = ScriptedExpert(
        {
            failing.instruction: ["Rain, first.", "Rain second."],
            passing.instruction: ["Cold."],
            empty.instruction: [""],
        },
        usage=Usage(prompt_tokens=10, completion_tokens=4),
    )
    accounting = QueryAccounting()
    rows = answer_and_verify(expert, [failing, passing, empty], accounting, verification_retries=2)
    assert [(row.candidate, row.verified, row.attempts) for row in rows] == [(failing, True, 2), (passing, None, 1)]
    assert accounting.as_dict() == {"rewriter": 0, "reviewer": 0, "expert": 4}  # 3 answers + 1 retry
    usage = accounting.usage("expert")
    assert (usage.prompt_tokens, usage.completion_tokens) == (40, 16)
