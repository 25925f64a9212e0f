"""
IFTrain checkers against the reference's own verdicts.

`iftrain_references.jsonl.gz` holds the verdicts of allenai/open-instruct's `IFEvalG` checkers (commit ebca9f7d4) on
5,829 (constraint, response) pairs over IFTrain's 29 ids: seeded arguments, responses written to follow, nearly
follow and break each constraint, and edits of real answers; `make_iftrain_references.py` regenerates it.
"""

import functools
from collections import Counter
from pathlib import Path

import pytest
from lm_eval.tasks.ifeval import instructions_util

from instrl_trl.constraints import ensure_punkt_tab, ifbench
from instrl_trl.constraints import instruction_ids as ifeval_ids
from instrl_trl.constraints.iftrain import CHECKERS, build_checker, follows, instruction_ids
from instrl_trl.constraints.iftrain.sentences import split_into_sentences
from tests.constraints.references import read_references


REFERENCES = Path(__file__).parent / "iftrain_references.jsonl.gz"
PINNED_COMMIT = "ebca9f7d4921042d7d8a65369e513d6566f0f3ba"


@functools.cache
def _references() -> tuple[dict, list[dict]]:
    return read_references(REFERENCES)


def test_equals_the_reference_verdict_on_every_row(no_download):
    header, rows = _references()
    assert header["open_instruct_commit"] == PINNED_COMMIT
    assert len(rows) >= 5000
    mismatches = []
    for row in rows:
        assert "error" not in row, f"the reference raised on a row: {row}"
        verdict = follows(build_checker(row["instruction_id"], row["kwargs"]), row["response"])
        if verdict != row["verdict"]:
            mismatches.append((row["instruction_id"], row["kwargs"], row["response"][:80], row["verdict"]))
    assert not mismatches, f"{len(mismatches)} of {len(rows)} verdicts differ from the reference's: {mismatches[:3]}"


def test_references_exercise_every_checker_both_ways():
    _, rows = _references()
    outcomes = Counter((row["instruction_id"], row["verdict"]) for row in rows)
    for instruction_id in CHECKERS:
        assert outcomes[instruction_id, True] >= 3 and outcomes[instruction_id, False] >= 20, instruction_id


def test_registry_has_the_29_training_ids_and_no_benchmark_id():
    assert len(instruction_ids()) == 29
    assert not set(CHECKERS) & (set(ifbench.CHECKERS) | set(ifeval_ids()))
    with pytest.raises(ValueError, match="unknown IFTrain instruction id 'keywords:nope'"):
        build_checker("keywords:nope", {})


def test_sentences_split_as_ifevals_splitter():
    # the reference's splitter is IFEval's (lm-eval carries the same rules): compare on every reference response
    _, rows = _references()
    texts = sorted({row["response"] for row in rows}) + ["Dr. Smith met Mr. J.R.R. Tolkien at 3.14 p.m. in the U.S.A."]
    for text in texts:
        assert split_into_sentences(text) == instructions_util.split_into_sentences(text), text


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "match"),
    [
        # the reference draws a falsy argument at random: refused, naming the field
        ("count:lowercase_counting", {"N": 0}, "kwarg `N` must be at least 1"),
        ("new:copy_span_idx", {"prompt_to_repeat": "abc", "n_start": 0, "n_end": 2}, "`n_start` must be at least 1"),
        ("keywords:word_once", {"keyword": "  "}, "kwarg `keyword` must be a non-blank string"),
        ("keywords:word_count_different_numbers", {"keyword": "a", "frequency": 1, "relation": "more"}, "`relation`"),
        ("letters:letter_counting2", {"letter": "#", "let_frequency": 1, "let_relation": "at least"}, "one letter"),
        ("keywords:word_once", {"keyword": "(river"}, "regular expression"),
        ("copy:repeat_phrase", {"phrase": "(a b", "small_n": 1}, "`phrase`"),
        ("count:counting_composition", {"n_sent": 2}, "kwarg `n_words` is required"),
        ("keywords:palindrome", {"N": 1}, r"unexpected kwargs \['N'\]"),
    ],
)
def test_arguments_the_reference_would_redraw_or_crash_on_fail_loudly(instruction_id, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build_checker(instruction_id, kwargs)


def test_reference_quirks_are_kept():
    ensure_punkt_tab()
    # keywords are case-blind regular expressions found inside other words
    assert follows(build_checker("keywords:word_once", {"keyword": "art"}), "Start here.")
    assert not follows(build_checker("keywords:word_once", {"keyword": "art"}), "Art and start.")
    # `exclude_word_harder` only sees the keyword between two spaces
    exclude = build_checker("keywords:exclude_word_harder", {"keyword": "river"})
    assert follows(exclude, "river flows.") and not follows(exclude, "the river flows.")
    # the copied span leaves out `n_end` although the reference's text says "including"
    span = build_checker("new:copy_span_idx", {"prompt_to_repeat": "hello world", "n_start": 1, "n_end": 4})
    assert follows(span, " ELL ") and not follows(span, "ello")
    # the divider of `counting_composition` is "***", the closing period one of the words
    composition = build_checker("count:counting_composition", {"n_sent": 1, "n_words": 3})
    assert follows(composition, "Birds sing.\n***\nFish swim.\n***\nCats nap.")
    assert not follows(composition, "Birds sing.\n* * *\nFish swim.\n* * *\nCats nap.")
    # `lowercase_counting` counts all lower-case words, the "t" of "don't" included
    lowercase = build_checker("count:lowercase_counting", {"N": 1})
    assert follows(lowercase, "I DON'T go") and not follows(lowercase, "I DON't go")
    # a blank response follows nothing, without asking the checker
    assert not follows(build_checker("punctuation:punctuation_dot", {}), "  \n")
