"""The `iftrain` family: texts that agree with IFTrain's checkers, seeded sampling, conflicts, a training family."""

import random

import pytest

from instrl_trl.constraints import (
    SAMPLED_IFBENCH_INSTRUCTION_IDS,
    SAMPLED_IFTRAIN_INSTRUCTION_IDS,
    SAMPLED_INSTRUCTION_IDS,
    TRAINING_CONSTRAINT_FAMILIES,
    Constraint,
    check_constraint_families,
    conflicts,
    family_of,
    iftrain,
    sample_constraint,
    sampled_instruction_ids,
)
from instrl_trl.constraints.iftrain.sampling import CONFLICTS, IFEVAL_CONFLICTS


# id -> (kwargs, a response written to follow the text, one that breaks it)
CASES = {
    "copy:repeat_phrase": (
        {"phrase": "Every cloud has a silver lining", "small_n": 2},
        "Here:\nEvery cloud has a golden lining\nEvery cloud hides a silver lining",
        "Every cloud has a silver lining\nEvery cloud has a silver lining",
    ),
    "detectable_format:sentence_hyphens": ({}, "It rained.-We stayed in.-Tea was hot.", "It rained. We stayed in."),
    "keywords:no_adjacent_consecutive": ({}, "Rivers carry water home.", "A big river."),
    "detectable_format:square_brackets": ({}, "[Rivers] [carry] [water.]", "[Rivers] carry [water.]"),
    "keywords:word_once": ({"keyword": "river"}, "The river is wide.", "The river meets another river."),
    "keywords:word_count_different_numbers": (
        {"keyword": "river", "frequency": 2, "relation": "at least"},
        "A river and a river.",
        "A river.",
    ),
    "keywords:exclude_word_harder": ({"keyword": "river"}, "The stream is wide.", "The river is wide."),
    "paragraphs:paragraphs": ({}, "Rain falls.\n***\nRivers rise.", "Rain falls.\n\nRivers rise."),
    "paragraphs:paragraphs2": ({}, "Rain falls.\n\nRivers rise.", "Rain falls.\n\nRivers rise.\n\nSeas fill."),
    "first_word:first_word_sent": (
        {"first_word": "river"},
        "River water flows. River banks hold it.",
        "River water flows. Banks hold it.",
    ),
    "first_word:first_word_answer": ({"first_word": "river"}, "River water flows.", "River, water flows."),
    "last_word:last_word_sent": (
        {"last_word": "river"},
        "We swam in the river. Fish live in the river!",
        "We swam in the river. Fish live there.",
    ),
    "last_word:last_word_answer": ({"last_word": "river"}, "We swam in the river.", "The river was cold."),
    "detectable_format:bigram_wrapping": ({}, "<<The river>> <<runs fast>>", "<<The river runs>> <<fast>>"),
    "punctuation:punctuation_dot": ({}, "No dots here", "One dot."),
    "punctuation:punctuation_exclamation": ({}, "Calm words.", "Loud words!"),
    "count:lowercase_counting": ({"N": 2}, "Rivers Carry the Cold water.", "Rivers carry the cold water."),
    "letters:letter_counting": ({"N": 10, "relation": "less than"}, "Go home.", "Rivers carry water."),
    "letters:letter_counting2": (
        {"letter": "r", "let_frequency": 3, "let_relation": "at least"},
        "Rivers are rare.",
        "Seas.",
    ),
    "count:counting_composition": (
        {"n_sent": 2, "n_words": 4},
        "Birds sing loud. Fish swim slow.\n***\nCats nap often. Dogs bark twice.\n***\nRain falls hard. Suns set now.",
        "Birds sing loud. Fish swim slow.\n* * *\nCats nap often. Dogs bark twice.\n* * *\nRain falls hard. Suns set.",
    ),
    "count:count_unique": ({}, "Rivers carry cold water.", "Rivers carry water. Seas hold water."),
    "count:count_increment_word": (
        {"keyword1": "river", "keyword2": "stone"},
        "A river, a stone and another stone.",
        "A river and a stone.",
    ),
    "keywords:palindrome": ({}, "We saw a kayak.", "We saw boats."),
    "keywords:keyword_specific_position": (
        {"keyword": "river", "n": 2, "m": 3},
        "Rain falls. The big river flows.",
        "Rain falls. The river flows.",
    ),
    "keywords:start_end": ({}, "Rivers carry water to other rivers", "Rivers carry water to other rivers."),
}


def test_every_sampled_iftrain_id_has_a_case_and_a_checker():
    assert set(CASES) == set(SAMPLED_IFTRAIN_INSTRUCTION_IDS)
    assert set(SAMPLED_IFTRAIN_INSTRUCTION_IDS) <= set(iftrain.CHECKERS)
    # the copy ids replace the task and take the request as an argument: checked, never appended
    assert set(iftrain.CHECKERS) - set(SAMPLED_IFTRAIN_INSTRUCTION_IDS) == {
        "copy:copy",
        "copy:copying_simple",
        "copy:copying_multiple",
        "new:copy_span_idx",
    }


@pytest.mark.parametrize("instruction_id", list(CASES))
def test_text_and_check_agree(instruction_id):
    kwargs, follows, breaks = CASES[instruction_id]
    constraint = Constraint(instruction_id, kwargs)
    assert constraint.family == "iftrain"
    text = constraint.description()
    for value in kwargs.values():
        assert str(value) in text  # the arguments are woven into the text
    assert constraint.check(follows), (text, follows)
    assert not constraint.check(breaks), (text, breaks)
    assert not constraint.check("   ")
    # the verdict is the reference's, from the checkers the reference test compares
    assert iftrain.follows(iftrain.build_checker(instruction_id, kwargs), follows)


def test_iftrain_constraint_errors_and_rows():
    with pytest.raises(ValueError, match=r"keywords:word_once.*`keyword` is required"):
        Constraint("keywords:word_once")
    with pytest.raises(ValueError, match=r"IFTrain's: .*keywords:word_once"):
        Constraint("keywords:word_onse")
    row = Constraint.from_dict({"instruction_id": "count:lowercase_counting", "kwargs": {"N": 2.0, "keyword": None}})
    assert row.kwargs == {"N": 2.0} and row.check("ONE two three")
    with pytest.raises(ValueError, match="no instruction text"):
        Constraint("copy:copy", {"prompt_to_repeat": "Write a poem."}).description()


def test_iftrain_is_a_training_family_and_the_fix_for_ifbench():
    assert TRAINING_CONSTRAINT_FAMILIES == ("ifeval", "iftrain")
    assert check_constraint_families(["ifeval", "iftrain"]) == ("ifeval", "iftrain")
    with pytest.raises(ValueError, match=r"names `ifbench`.*use `\[ifeval, iftrain\]` \(or `\[iftrain\]`\)"):
        check_constraint_families(["iftrain", "ifbench"])
    assert family_of("keywords:palindrome") == "iftrain" and family_of("words:palindrome") == "ifbench"


def test_sampling_is_seeded_and_reaches_every_iftrain_id():
    def draws(seed, families):
        rng = random.Random(seed)
        return [sample_constraint([], rng, families=families) for _ in range(4)]

    both = ["ifeval", "iftrain"]
    random.seed(5)
    state = random.getstate()
    assert draws(3, both) == draws(3, both) == draws(3, ["iftrain", "ifeval"])
    assert random.getstate() == state  # the global random is not used
    ids = {sample_constraint([], random.Random(seed), families=["iftrain"]).instruction_id for seed in range(400)}
    assert ids == set(SAMPLED_IFTRAIN_INSTRUCTION_IDS)
    assert {sample_constraint([], random.Random(seed), families=both).family for seed in range(50)} == set(both)
    assert sampled_instruction_ids(both) == (*SAMPLED_INSTRUCTION_IDS, *SAMPLED_IFTRAIN_INSTRUCTION_IDS)


def test_conflicts_are_symmetric_and_cover_the_layouts():
    for a, b in [*CONFLICTS, *IFEVAL_CONFLICTS]:
        assert b in conflicts(a) and a in conflicts(b)
        assert {family_of(a), family_of(b)} <= {"ifeval", "iftrain"}, (a, b)
    assert "detectable_format:bigram_wrapping" in conflicts("detectable_format:square_brackets")
    assert "count:lowercase_counting" in conflicts("change_case:english_lowercase")
    assert "punctuation:punctuation_dot" in conflicts("detectable_content:postscript")
    # a training and a test family are never drawn together
    assert set(SAMPLED_IFBENCH_INSTRUCTION_IDS) <= conflicts("keywords:word_once")


def test_mixed_sampling_never_combines_conflicting_constraints():
    rng = random.Random(0)
    families_seen, sizes = set(), []
    for _ in range(40):
        existing = []
        while (constraint := sample_constraint(existing, rng, families=["ifeval", "iftrain"])) is not None:
            for other in existing:
                assert constraint.instruction_id not in conflicts(other.instruction_id)
            constraint.description()
            existing.append(constraint)
        sizes.append(len(existing))
        families_seen |= {c.family for c in existing}
        words = [v for c in existing for k, v in c.kwargs.items() if k in ("keyword", "first_word", "last_word")]
        assert len(words) == len(set(words))  # keywords stay apart across constraints
    # JSON output stops an instruction early; most carry many constraints
    assert families_seen == {"ifeval", "iftrain"} and min(sizes) > 1 and sorted(sizes)[len(sizes) // 2] > 10


def test_sampled_iftrain_arguments_are_in_range_and_in_the_text():
    for seed in range(300):
        constraint = sample_constraint([], random.Random(seed), families=["iftrain"])
        kwargs = constraint.kwargs
        if constraint.instruction_id == "count:count_increment_word":
            assert kwargs["keyword1"] not in kwargs["keyword2"] and kwargs["keyword2"] not in kwargs["keyword1"]
        if constraint.instruction_id == "letters:letter_counting":
            low, high = (300, 1000) if kwargs["relation"] == "less than" else (50, 300)
            assert low <= kwargs["N"] <= high
        if constraint.instruction_id == "copy:repeat_phrase":
            assert 2 <= kwargs["small_n"] <= 3
        for value in kwargs.values():
            assert str(value) in constraint.description()
