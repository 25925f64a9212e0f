import importlib.resources
import json
import re


GENERAL_TERMS = [
    "a city", "a company", "people", "a program", "something", "a product", "a country", "a book", "food", "a person",
    "a topic", "technology", "a business", "a problem", "an animal", "a game", "a tool", "a place", "a website",
    "an event",
]  # fmt: skip
REASONING_CUES = [
    "calculate", "solve", "how many", "compare", "plan", "prove", "estimate", "decide", "why", "explain", "analyze",
    "analyse", "steps",
]  # fmt: skip


def _matches(text, terms):
    return any(re.search(rf"\b{re.escape(term)}\b", text, re.IGNORECASE) for term in terms)


def _load_seeds():
    path = importlib.resources.files("instrl_trl").joinpath("data/quickstart_seeds.jsonl")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def test_seed_rows_are_well_formed():
    rows = _load_seeds()
    for row in rows:
        assert set(row) == {"instruction"}
        assert isinstance(row["instruction"], str)
        assert row["instruction"] == row["instruction"].strip() != ""
        assert 5 <= len(row["instruction"].split()) <= 25, row["instruction"]


def test_seed_instructions_are_unique_and_enough():
    instructions = [row["instruction"] for row in _load_seeds()]
    normalized = {" ".join(instruction.lower().split()) for instruction in instructions}
    assert len(normalized) == len(instructions)
    assert len(normalized) >= 180


def test_seed_mix_gives_every_rule_something_to_act_on():
    instructions = [row["instruction"] for row in _load_seeds()]
    general = sum(_matches(instruction, GENERAL_TERMS) for instruction in instructions) / len(instructions)
    reasoning = sum(_matches(instruction, REASONING_CUES) for instruction in instructions) / len(instructions)
    # About half name a general term (concretizing), about 40% ask for reasoning (increase_reasoning_steps); neither
    # kind takes over, so the other operations stay useful too.
    assert 0.40 <= general <= 0.65, general
    assert 0.30 <= reasoning <= 0.60, reasoning


def test_long_seeds_are_named_in_a_warning(caplog):
    import logging

    from accelerate import PartialState

    from instrl_trl.data.seeds import warn_long_seeds

    PartialState()  # the stages' logger needs it, as every stage has
    seeds = ["Write a poem about the sea.", "Summarize: " + "word " * 10_000, "Name a river."]
    with caplog.at_level(logging.WARNING):
        assert warn_long_seeds(seeds, "instruction") == [1]
    assert "1 seeds in `instruction` have more than 2000 words (the longest, row 1, has 10001)" in caplog.text
    assert warn_long_seeds(seeds[:1], "instruction") == []
