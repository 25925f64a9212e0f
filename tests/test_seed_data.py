import importlib.resources
import json
import re
from collections import Counter

import pytest

from instrl_trl.data import load_heldout_seeds
from instrl_trl.data.benchmark_prompts import check_not_benchmark_prompts, normalize


GENERAL_TERMS = [
    "a city", "a company", "people", "a program", "something", "a product", "a country", "a book", "food", "a person",
    "a topic", "technology", "a business", "a problem", "an animal", "a game", "a tool", "a place", "a website",
    "an event",
]  # fmt: skip
REASONING_CUES = [
    "calculate", "solve", "how many", "compare", "plan", "prove", "estimate", "decide", "why", "explain", "analyze",
    "analyse", "steps",
]  # fmt: skip


# Dolly-15k's share of rows per category (of 15,011), the mix the held-out seeds follow
DOLLY_CATEGORY_SHARES = {
    "open_qa": 0.249, "general_qa": 0.146, "classification": 0.142, "closed_qa": 0.118, "brainstorming": 0.118,
    "information_extraction": 0.100, "summarization": 0.079, "creative_writing": 0.047,
}  # fmt: skip
# A held-out seed with this share of its words in one quickstart seed is a paraphrase of it, not a new seed
MAX_SHARED_WORDS = 0.8


def _matches(text, terms):
    return any(re.search(rf"\b{re.escape(term)}\b", text, re.IGNORECASE) for term in terms)


def _load_seeds(file_name="quickstart_seeds.jsonl"):
    path = importlib.resources.files("instrl_trl").joinpath(f"data/{file_name}")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def _words(text):
    return set(re.findall(r"[\w']+", text.casefold()))


def _shared_words(text, other):
    """The share of `text`'s distinct words that `other` also has."""
    words = _words(text)
    return len(words & _words(other)) / len(words)


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


def test_heldout_rows_are_well_formed():
    rows = _load_seeds("heldout_seeds.jsonl")
    for row in rows:
        assert set(row) == {"instruction", "category"}, row
        assert isinstance(row["instruction"], str) and row["category"] in DOLLY_CATEGORY_SHARES, row
        assert row["instruction"] == row["instruction"].strip() != ""
        assert 5 <= len(row["instruction"].split()) <= 30, row["instruction"]


def test_heldout_instructions_are_unique_and_enough():
    normalized = {normalize(row["instruction"]) for row in _load_seeds("heldout_seeds.jsonl")}
    assert len(normalized) == len(_load_seeds("heldout_seeds.jsonl"))
    assert len(normalized) >= 150


def test_heldout_seeds_are_disjoint_from_the_quickstart_seeds():
    heldout = [row["instruction"] for row in _load_seeds("heldout_seeds.jsonl")]
    quickstart = [row["instruction"] for row in _load_seeds()]
    assert not {normalize(text) for text in heldout} & {normalize(text) for text in quickstart}
    # the measure flags a paraphrase of a quickstart seed (7 of its 8 words), not a new question on the same topic
    seed = "Explain why the sky looks blue during the day."
    assert seed in quickstart
    assert _shared_words("Explain why the sky is blue during the day.", seed) == 7 / 8
    assert _shared_words("What makes the sky look blue?", seed) == 3 / 6
    near_copies = [
        (text, seed) for text in heldout for seed in quickstart if _shared_words(text, seed) >= MAX_SHARED_WORDS
    ]
    assert near_copies == []


def test_heldout_seeds_pass_the_benchmark_prompt_check():
    from instrl_trl.data.seeds import prepare_seed_dataset

    check_not_benchmark_prompts([row["instruction"] for row in _load_seeds("heldout_seeds.jsonl")])
    # the check every stage runs on its seeds keeps all 150 rows
    assert len(prepare_seed_dataset(load_heldout_seeds(), "instruction")) == len(_load_seeds("heldout_seeds.jsonl"))


def test_heldout_categories_follow_dolly():
    counts = Counter(row["category"] for row in _load_seeds("heldout_seeds.jsonl"))
    assert set(counts) == set(DOLLY_CATEGORY_SHARES)
    total = sum(counts.values())
    for category, share in DOLLY_CATEGORY_SHARES.items():
        assert counts[category] / total == pytest.approx(share, abs=0.02), category


def test_load_heldout_seeds():
    dataset = load_heldout_seeds()
    assert dataset.column_names == ["instruction", "category"]
    rows = _load_seeds("heldout_seeds.jsonl")
    assert dataset["instruction"] == [row["instruction"] for row in rows]
    assert dataset["category"] == [row["category"] for row in rows]
