"""
The `instruction_following` metric's `ifbench` configuration against IFBench's own verdicts
(`tests/constraints/ifbench_references.jsonl.gz`: allenai/IFBench's `evaluation_lib` at commit db69a6f on 11,830
responses to its 300 test rows).
"""

import functools
import gzip
import json
from collections import defaultdict
from pathlib import Path

import evaluate
import pytest

from instrl_trl.metrics import IFBENCH, INSTRUCTION_FOLLOWING_PATH, load_instruction_following


REFERENCES = Path(__file__).parents[1] / "constraints" / "ifbench_references.jsonl.gz"


@functools.cache
def reference_rows() -> list[dict]:
    with gzip.open(REFERENCES, "rt", encoding="utf-8") as lines:
        _, *rows = (json.loads(line) for line in lines)
    return rows


@pytest.fixture(scope="module")
def metric():
    return load_instruction_following("ifbench")


def mean(values) -> float:
    return sum(values) / len(values)


def ifbench_aggregates(rows: list[dict]) -> dict:
    """IFBench's scores computed from its own verdicts, as its `evaluation_main` aggregates them."""
    strict = [row["strict"] for row in rows]
    loose = [row["loose"] for row in rows]
    by_instruction = defaultdict(lambda: ([], []))
    by_count = defaultdict(lambda: ([], []))
    for row in rows:
        for iid, s, lo in zip(row["instruction_id_list"], row["strict"], row["loose"], strict=True):
            by_instruction[iid][0].append(s)
            by_instruction[iid][1].append(lo)
        by_count[len(row["strict"])][0].append(all(row["strict"]))
        by_count[len(row["strict"])][1].append(all(row["loose"]))
    return {
        "prompt_level_strict_acc": mean([all(v) for v in strict]),
        "inst_level_strict_acc": mean([x for v in strict for x in v]),
        "prompt_level_loose_acc": mean([all(v) for v in loose]),
        "inst_level_loose_acc": mean([x for v in loose for x in v]),
        "num_scored": len(rows),
        "by_instruction": {
            iid: {"inst_level_strict_acc": mean(s), "inst_level_loose_acc": mean(lo), "count": len(s)}
            for iid, (s, lo) in sorted(by_instruction.items())
        },
        "by_num_constraints": {
            k: {"prompt_level_strict_acc": mean(s), "prompt_level_loose_acc": mean(lo), "count": len(s)}
            for k, (s, lo) in sorted(by_count.items())
        },
    }


def test_ifbench_configuration_equals_ifbench_aggregates(metric):
    rows = reference_rows()
    # The rows as IFBench ships them: string keys, every argument name with nulls, floats for counts
    references = [
        json.dumps({"key": row["key"], "instruction_id_list": row["instruction_id_list"], "kwargs": row["kwargs"]})
        for row in rows
    ]
    results = metric.compute(predictions=[row["response"] for row in rows], references=references)

    unscorable = [row for row in rows if "error" in row]  # IFBench itself fails without the perceptron tagger
    expected = ifbench_aggregates([row for row in rows if "error" not in row])
    assert {key: results[key] for key in expected} == expected
    assert results["num_scored"] >= 0.95 * len(rows)
    assert results["num_skipped"] == len(unscorable) > 0
    assert [(skip["index"], skip["key"]) for skip in results["skipped"]] == [
        (index, row["key"]) for index, row in enumerate(rows) if "error" in row
    ]
    assert all("words:start_verb" in skip["reason"] for skip in results["skipped"])


def test_kwargs_with_nulls_and_floats_are_taken_as_they_are(metric):
    kwargs = dict.fromkeys(("N", "num_words", "keyword", "small_n"), None) | {"N": 2.0}
    row = {"key": "7", "prompt": "Use two numbers.", "instruction_id_list": ["count:numbers"], "kwargs": [kwargs]}
    responses = ["Step 1:\nThere are 3 and 4 cats.", "There are 3 and 4 cats.", "No numbers."]
    results = metric.compute(predictions=responses, references=[json.dumps(row)] * 3)
    assert (results["num_scored"], results["num_skipped"]) == (3, 0)
    assert (results["prompt_level_strict_acc"], results["prompt_level_loose_acc"]) == (1 / 3, 2 / 3)


def test_rows_without_offline_data_are_skipped_by_key_whatever_on_invalid(metric):
    sample = [json.loads(line) for line in Path(IFBENCH.sample_path).read_text(encoding="utf-8").splitlines()]
    start_verb = next(row for row in sample if "words:start_verb" in row["instruction_id_list"])
    other = next(row for row in sample if "words:start_verb" not in row["instruction_id_list"])
    references = [json.dumps(other), json.dumps(start_verb)]
    for on_invalid in ("skip", "raise"):
        results = metric.compute(predictions=["Go home.", "Go home."], references=references, on_invalid=on_invalid)
        assert results["num_scored"] == 1
        [skipped] = results["skipped"]
        assert (skipped["index"], skipped["key"]) == (1, start_verb["key"])
        assert "averaged_perceptron_tagger" in skipped["reason"]


def test_unknown_ifbench_id_follows_on_invalid(metric):
    row = {"key": "1", "prompt": "...", "instruction_id_list": ["count:made_up"], "kwargs": [{}]}
    results = metric.compute(predictions=["x"], references=[json.dumps(row)])
    assert results["skipped"][0]["key"] == "1" and "count:made_up" in results["skipped"][0]["reason"]
    with pytest.raises(ValueError, match="key '1'"):
        metric.compute(predictions=["x"], references=[json.dumps(row)], on_invalid="raise")


def test_default_configuration_is_still_ifeval():
    row = {"key": 1, "prompt": "No commas.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    results = evaluate.load(INSTRUCTION_FOLLOWING_PATH).compute(predictions=["a, b"], references=[json.dumps(row)])
    assert results["num_scored"] == 1 and results["prompt_level_strict_acc"] == 0.0
    # ... and the same row under IFBench's registry is an unknown id
    ifbench = load_instruction_following("ifbench").compute(predictions=["a, b"], references=[json.dumps(row)])
    assert ifbench["num_skipped"] == 1


def test_unknown_configuration_is_refused():
    with pytest.raises(ValueError, match="valid ones: ifeval, ifbench"):
        evaluate.load(INSTRUCTION_FOLLOWING_PATH, "ifbenchh")
