"""The `ifbench` constraint family: texts that agree with IFBench's checkers, and conflict-free seeded sampling."""

import random

import pytest

from instrl_trl.constraints import (
    SAMPLED_IFBENCH_INSTRUCTION_IDS,
    SAMPLED_INSTRUCTION_IDS,
    Constraint,
    check_constraint_families,
    conflicts,
    ifbench,
    iftrain,
    instruction_ids,
    sample_constraint,
    sampled_instruction_ids,
)
from instrl_trl.constraints.ifbench.sampling import CONFLICTS as IFBENCH_CONFLICTS


KEYWORDS = {"keyword1": "alpha", "keyword2": "bravo", "keyword3": "charlie", "keyword4": "delta", "keyword5": "echo"}
# id -> (kwargs, a response written to follow the text, one that breaks it)
CASES = {
    "count:word_count_range": ({"min_words": 5, "max_words": 8}, "One two three four five six.", "Too short."),
    "count:unique_word_count": ({"N": 5}, "Rivers carry water toward the sea.", "the the the the the the"),
    "ratio:stop_words": (
        {"percentage": 30},
        "Rivers carry cold water toward distant seas.",
        "It is the one that is in it.",
    ),
    "count:conjunctions": (
        {"small_n": 2},
        "Rain falls and rivers rise, but lakes stay calm.",
        "Rain falls and rivers rise.",
    ),
    "count:person_names": ({"N": 2}, "Emma met Liam at noon.", "Emma met a friend at noon."),
    "count:numbers": ({"N": 2}, "Pi is 3.14 and e is 2.72.", "Pi is 3.14."),
    "count:pronouns": ({"N": 3}, "I think you know what they mean.", "Rivers carry water."),
    "count:punctuation": (
        {},
        "Wait?! Yes, it works; here: done. Really? Yes!",
        "Yes, it works; here: done. Really? Yes!",
    ),
    "count:keywords_multiple": (
        KEYWORDS,
        "alpha bravo bravo charlie charlie charlie" + " delta" * 5 + " echo" * 7,
        "alpha bravo bravo charlie charlie charlie" + " delta" * 5 + " echo" * 6,
    ),
    "ratio:sentence_type": ({}, "Rain falls. Rivers rise. Why?", "Rain falls. Why? How?"),
    "ratio:sentence_balance": ({}, "Rain falls. Why? Wow!", "Rain falls. Rivers rise. Why? Wow!"),
    "words:repeats": ({"small_n": 2}, "the river and the sea", "the river, the sea, the sky"),
    "words:no_consecutive": ({}, "Rivers carry water toward distant seas.", "Rivers run west."),
    "words:last_first": ({}, "The sun warms the river. River water flows.", "The sun warms the river. Water flows."),
    "words:keywords_specific_position": (
        {"keyword": "river", "n": 2, "m": 3},
        "Rain falls. The big river flows.",
        "Rain falls. The river flows.",
    ),
    "words:words_position": (
        {"keyword": "river"},
        "The river is wide, and I love the river too.",
        "The river is wide and I love it.",
    ),
    "sentence:keyword": ({"word": "river", "N": 2}, "Rain falls. The river rises.", "The river rises. Rain falls."),
    "sentence:increment": (
        {"small_n": 2},
        "Rain falls. Rivers rise fast now. Lakes fill up with cold water.",
        "Rain falls. Rivers rise.",
    ),
    "format:parentheses": ({}, "Nested: (a [b {c (d [e] f) g} h] i).", "Shallow (a [b] c)."),
    "format:quotes": (
        {},
        'He said "she said \'they said "go" loudly\' softly" today.',
        "He said \"she said 'go'\" today.",
    ),
    "format:emoji": ({}, "Rain falls 🌊. Rivers rise 🌊.", "Rain falls 🌊. Rivers rise."),
    "format:list": ({"sep": "..."}, "... apples\n... pears", "* apples\n* pears"),
    "format:thesis": (
        {},
        "<i>Rivers shape valleys.</i> They carve rock over time.",
        "Rivers shape valleys. They carve rock over time.",
    ),
    "format:sub-bullets": ({}, "* Rivers\n  - carve rock\n* Lakes\n  - store water", "* Rivers\n* Lakes"),
    "format:no_bullets_bullets": (
        {},
        "Rivers carve valleys. Lakes store water.\n* Rain\n* Snow",
        "Rivers carve valleys.\n* Rain\n* Snow",
    ),
    "format:title_case": ({}, "Rivers Carve Deep Valleys.", "Rivers carve deep valleys."),
    "format:output_template": (
        {},
        "My Answer: Yes.\nMy Conclusion: It works.\nFuture Outlook: Bright.",
        "My Answer: Yes.\nMy Conclusion: It works.",
    ),
}


def test_every_sampled_ifbench_id_has_a_case_and_a_checker():
    assert set(CASES) == set(SAMPLED_IFBENCH_INSTRUCTION_IDS)
    assert set(SAMPLED_IFBENCH_INSTRUCTION_IDS) <= set(ifbench.CHECKERS)
    assert "words:start_verb" not in SAMPLED_IFBENCH_INSTRUCTION_IDS  # needs NLTK's tagger, which is not offline


@pytest.mark.parametrize("instruction_id", list(CASES))
def test_text_and_check_agree(instruction_id):
    kwargs, follows, breaks = CASES[instruction_id]
    constraint = Constraint(instruction_id, kwargs)
    assert constraint.family == "ifbench"
    text = constraint.description()
    for value in kwargs.values():
        assert str(value) in text  # the arguments are woven into the text
    assert constraint.check(follows), (text, follows)
    assert not constraint.check(breaks), (text, breaks)
    # the verdict is IFBench's strict one, from the checkers the metric uses
    assert ifbench.check_row(follows, [instruction_id], [kwargs]).strict == [True]
    assert not constraint.check("   ")


def test_ifbench_constraint_errors_and_rows():
    with pytest.raises(ValueError, match=r"count:numbers.*`N` is required"):
        Constraint("count:numbers")
    with pytest.raises(ValueError, match="valid ids: .*punctuation:no_comma.*or IFBench's: .*count:numbers"):
        Constraint("count:numbrs")
    # an IFBench row's kwargs carry every argument name, unused ones null: they are dropped
    row = Constraint.from_dict({"instruction_id": "count:numbers", "kwargs": {"N": 2.0, "small_n": None}})
    assert row.kwargs == {"N": 2.0} and row.check("1 and 2")
    # an id that replaces the task has a checker (scores IFBench rows) but no text to append
    csv = Constraint("custom:csv_city")
    with pytest.raises(ValueError, match="no instruction text"):
        csv.description()


def test_family_choice_is_validated():
    assert check_constraint_families(["ifbench", "ifeval", "ifbench"], for_training=False) == ("ifbench", "ifeval")
    assert check_constraint_families("ifeval") == ("ifeval",)
    # for training data (the default) IFBench's test constraints are refused, with why and what to use instead
    with pytest.raises(ValueError, match=r"`constraint_families` names `ifbench`.*out-of-distribution.*contaminates"):
        check_constraint_families(["ifeval", "ifbench"])
    with pytest.raises(ValueError, match=r"`families` has unknown constraint family \['ifevl'\]; valid values: "):
        sample_constraint([], random.Random(0), families=["ifevl"])
    with pytest.raises(ValueError, match="`constraint_families` must be a non-empty list .*'ifeval'"):
        check_constraint_families([])


def test_sampling_is_seeded_and_reaches_every_family():
    def draws(seed, families):
        rng = random.Random(seed)
        return [sample_constraint([], rng, families=families) for _ in range(4)]

    both = ["ifeval", "ifbench"]
    random.seed(5)
    state = random.getstate()
    assert draws(3, both) == draws(3, both) == draws(3, ["ifbench", "ifeval"])  # listing order does not matter
    assert random.getstate() == state  # the global random is not used
    assert len({tuple(draws(seed, both)) for seed in range(10)}) == 10  # the draws follow the seed
    ifbench_ids = {
        sample_constraint([], random.Random(seed), families=["ifbench"]).instruction_id for seed in range(400)
    }
    assert ifbench_ids == set(SAMPLED_IFBENCH_INSTRUCTION_IDS)
    mixed = {sample_constraint([], random.Random(seed), families=both).family for seed in range(50)}
    assert mixed == {"ifeval", "ifbench"}
    assert sampled_instruction_ids(both) == (*SAMPLED_INSTRUCTION_IDS, *SAMPLED_IFBENCH_INSTRUCTION_IDS)


def test_conflict_table_covers_both_families():
    known = set(instruction_ids()) | set(ifbench.CHECKERS) | set(iftrain.CHECKERS)
    for instruction_id in known:
        assert instruction_id in conflicts(instruction_id)
        for other in conflicts(instruction_id):
            assert other in known, other  # no misspelt id in the hand-written tables
            assert instruction_id in conflicts(other)
    for a, b in IFBENCH_CONFLICTS:
        assert b in conflicts(a)
    assert "count:punctuation" in conflicts("punctuation:no_comma")
    assert "format:title_case" in conflicts("change_case:english_lowercase")
    assert "count:word_count_range" in conflicts("length_constraints:number_words")


def test_mixed_sampling_never_combines_conflicting_constraints():
    rng = random.Random(0)
    families_seen = set()
    for _ in range(40):
        existing = []
        while (constraint := sample_constraint(existing, rng, families=["ifeval", "ifbench"])) is not None:
            for other in existing:
                assert constraint.instruction_id not in conflicts(other.instruction_id)
            constraint.description()
            existing.append(constraint)
        assert len({c.instruction_id for c in existing}) == len(existing) > 1
        families_seen |= {c.family for c in existing}
    assert families_seen == {"ifeval", "ifbench"}


def test_sampled_ifbench_arguments():
    existing = [Constraint("keywords:existence", {"keywords": ["thing", "word"]})]
    keyword_args = ("keyword", "word", *KEYWORDS)
    seen = set()
    for seed in range(300):
        constraint = sample_constraint(existing, random.Random(seed), families=["ifbench"])
        kwargs = constraint.kwargs
        words = [kwargs[key] for key in keyword_args if key in kwargs]
        assert not set(words) & {"thing", "word"}  # keywords stay apart across constraints
        if constraint.instruction_id == "count:keywords_multiple":
            # the checker counts substrings: no keyword may sit inside another
            assert not any(a != b and a in b for a in words for b in words)
        if constraint.instruction_id == "count:word_count_range":
            low, high = kwargs["min_words"], kwargs["max_words"]
            assert 100 <= low <= 500 and int(low * 0.05) <= high - low <= int(low * 0.1)  # IFBench's range
        for value in kwargs.values():
            assert str(value) in constraint.description()
        seen.add(constraint.instruction_id)
    assert {"count:keywords_multiple", "count:word_count_range"} <= seen
