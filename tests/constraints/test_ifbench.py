"""
IFBench checkers against IFBench's own verdicts.

`ifbench_references.jsonl.gz` holds allenai/IFBench's strict and loose verdicts (its `evaluation_lib`, commit
db69a6f) on 11,830 responses to its 300 test rows (its own sample answers, edits of them,
synthetic ones built to satisfy or break each constraint); `make_ifbench_references.py` regenerates it.
"""

import functools
import json
from collections import Counter
from pathlib import Path

import nltk
import pytest

from instrl_trl.constraints.ifbench import (
    CHECKERS,
    CheckerUnavailable,
    InvalidIFBenchRowError,
    build_checker,
    check_row,
    instruction_ids,
    loose_variants,
)
from instrl_trl.constraints.ifbench.base import english_stopwords
from tests.constraints.references import read_references


REFERENCES = Path(__file__).parent / "ifbench_references.jsonl.gz"
SAMPLE = Path(__file__).parents[2] / "instrl_trl" / "data" / "ifbench_sample.jsonl"


@functools.cache
def _references() -> tuple[dict, list[dict]]:
    return read_references(REFERENCES)


def test_equals_ifbench_verdicts_on_every_scored_reference(no_download):
    header, rows = _references()
    assert header["ifbench_commit"].startswith("db69a6f")
    mismatches, scored, skipped_keys, all_keys = [], 0, set(), set()
    for row in rows:
        all_keys.add(row["key"])
        verdict = check_row(row["response"], row["instruction_id_list"], row["kwargs"])
        if verdict.skipped:
            skipped_keys.add(row["key"])
            assert "words:start_verb" in row["instruction_id_list"] and "averaged_perceptron_tagger" in verdict.skipped
            continue
        assert "error" not in row, f"IFBench raised on a row we score: {row}"
        scored += 1
        if (verdict.strict, verdict.loose) != (row["strict"], row["loose"]):
            mismatches.append((row["key"], row["instruction_id_list"], row["response"][:80], verdict, row))
    assert not mismatches, f"{len(mismatches)} verdicts differ from IFBench's, first: {mismatches[0]}"
    assert scored >= 0.95 * len(rows)
    assert len(all_keys) == 300 and len(all_keys - skipped_keys) >= 0.95 * 300


def test_references_exercise_every_checker_both_ways():
    _, rows = _references()
    outcomes = Counter()
    for row in rows:
        if "error" not in row:
            for iid, strict, loose in zip(row["instruction_id_list"], row["strict"], row["loose"], strict=True):
                outcomes[iid, strict] += 1
                outcomes[iid, "loose only"] += loose and not strict
    for iid in set(CHECKERS) - {"words:start_verb"}:
        assert outcomes[iid, True] and outcomes[iid, False], iid
    assert sum(outcomes[iid, "loose only"] > 0 for iid in CHECKERS) >= 40


def test_registry_has_ifbench_ids_and_rejects_unknown_ones():
    assert len(instruction_ids()) == 58
    with pytest.raises(InvalidIFBenchRowError, match="unknown IFBench instruction id 'format:nope'"):
        check_row("text", ["format:nope"], [{}])
    with pytest.raises(InvalidIFBenchRowError, match="same length"):
        check_row("text", ["format:no_whitespace"], [])


def test_null_kwargs_are_dropped_and_integral_floats_accepted():
    row_kwargs = dict.fromkeys(("N", "keyword", "options", "small_n"))
    verdict = check_row("I you we", ["count:pronouns"], [{**row_kwargs, "N": 3.0}])
    assert verdict.strict == [True]
    assert check_row("I you", ["count:pronouns"], [{**row_kwargs, "N": 3.0}]).strict == [False]


def test_bad_kwargs_fail_loudly_naming_the_field():
    with pytest.raises(InvalidIFBenchRowError, match="kwarg `N` is required"):
        check_row("x", ["count:pronouns"], [{"N": None}])
    with pytest.raises(InvalidIFBenchRowError, match="kwarg `N` must be a whole number"):
        check_row("x", ["count:pronouns"], [{"N": 2.5}])
    with pytest.raises(InvalidIFBenchRowError, match="unexpected kwargs \\['word'\\]"):
        check_row("x", ["count:pronouns"], [{"N": 1, "word": "a"}])


def test_ifbench_quirks_are_kept():
    # Distinct conjunctions are counted as raw tokens: "and" and "And," are two.
    assert build_checker("count:conjunctions", {"small_n": 2}).check("and And,")
    # repeat:repeat_span slices characters (IFBench b5c6b82), not words.
    span = build_checker("repeat:repeat_span", {"prompt_to_repeat": "hello world", "n_start": 1, "n_end": 3})
    assert span.check(" ELL ") and not span.check("hello world")
    # ratio:overlap compares character trigrams.
    assert build_checker("ratio:overlap", {"reference_text": "abcd", "percentage": 100.0}).check("bcd")


def test_loose_sees_through_a_chatty_first_line():
    verdict = check_row("Sure, here it is:\n**NoWhitespace**", ["format:no_whitespace"], [{}])
    assert (verdict.strict, verdict.loose) == ([False], [True])
    assert loose_variants("a\nb*\nc")[2:5] == ["b*\nc", "a\nb*", "b*"]


def test_start_verb_skips_without_the_tagger_and_never_downloads(no_download):
    try:
        nltk.data.find("taggers/averaged_perceptron_tagger_eng")
    except LookupError:
        with pytest.raises(CheckerUnavailable, match="averaged_perceptron_tagger_eng"):
            build_checker("words:start_verb", {})
        verdict = check_row("Run home.", ["words:start_verb", "format:no_whitespace"], [{}, {}])
        assert verdict.skipped and verdict.strict == [] and not verdict.prompt_level_loose
    else:  # a machine with the tagger installed scores the row
        assert check_row("Run home.", ["words:start_verb"], [{}]).strict == [True]


def test_shipped_stopwords_are_nltks_english_list():
    words = english_stopwords()
    assert len(words) == 198 and {"the", "yourselves", "mustn't", "you've"} <= words


def test_shipped_sample_is_ifbench_schema_and_scorable():
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    assert 30 <= len(rows) <= 60
    for row in rows:
        assert set(row) == {"key", "prompt", "instruction_id_list", "kwargs"}
        assert all(iid in CHECKERS for iid in row["instruction_id_list"])
        check_row("A response.", row["instruction_id_list"], row["kwargs"], prompt=row["prompt"])
