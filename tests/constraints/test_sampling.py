import random

from instrl_trl.constraints import SAMPLED_INSTRUCTION_IDS, Constraint, conflicts, instruction_ids, sample_constraint


def test_conflicts_are_symmetric():
    for instruction_id in instruction_ids():
        assert instruction_id in conflicts(instruction_id)
        for other in conflicts(instruction_id):
            assert instruction_id in conflicts(other)
    # lm-eval lists this pair only one way round
    assert "language:response_language" in conflicts("keywords:existence")
    # and this one not at all: section markers are case-sensitive
    assert "detectable_format:multiple_sections" in conflicts("change_case:english_lowercase")


def test_sample_constraint_uses_our_rng_only():
    random.seed(123)
    state = random.getstate()
    first = [sample_constraint([], random.Random(7)) for _ in range(3)]
    assert random.getstate() == state  # lm-eval's global random was not used
    assert first[0] == first[1] == first[2]
    samples = {sample_constraint([], random.Random(seed)).instruction_id for seed in range(200)}
    assert samples == set(SAMPLED_INSTRUCTION_IDS)


def test_sample_constraint_avoids_conflicts_until_exhausted():
    rng = random.Random(0)
    for _ in range(20):
        existing = []
        while (constraint := sample_constraint(existing, rng)) is not None:
            for other in existing:
                assert constraint.instruction_id not in conflicts(other.instruction_id)
                assert other.instruction_id not in conflicts(constraint.instruction_id)
            constraint.description()
            existing.append(constraint)
        assert existing
    json_only = [Constraint("detectable_format:json_format")]
    picks = {sample_constraint(json_only, random.Random(seed)) for seed in range(30)}
    assert {pick.instruction_id for pick in picks} == {"keywords:existence", "keywords:forbidden_words"}
    full = [
        *json_only,
        Constraint("keywords:existence", {"keywords": ["a1"]}),
        Constraint("keywords:forbidden_words", {"forbidden_words": ["b2"]}),
    ]
    assert sample_constraint(full, random.Random(0)) is None


def test_sample_constraint_keeps_keywords_apart():
    existing = [Constraint("keywords:existence", {"keywords": ["thing", "word"]})]
    seen = 0
    for seed in range(30):
        constraint = sample_constraint(existing, random.Random(seed))
        if constraint.instruction_id == "keywords:forbidden_words":
            seen += 1
            assert not set(constraint.kwargs["forbidden_words"]) & {"thing", "word"}
    assert seen  # the check above ran
