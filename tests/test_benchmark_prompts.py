"""Benchmark test prompts (the packaged IFEval and IFBench samples) are refused as seeds."""

import doctest
import json
from importlib.resources import files

import pytest

from instrl_trl.data import benchmark_prompts as module
from instrl_trl.data.benchmark_prompts import (
    MIN_CONTAINED_CHARS,
    benchmark_prompts,
    check_not_benchmark_prompts,
    find_benchmark_prompts,
)


def sample_rows(file_name: str) -> list[dict]:
    text = files("instrl_trl.data").joinpath(file_name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


IFBENCH_ROWS = sample_rows("ifbench_sample.jsonl")
IFEVAL_ROWS = sample_rows("ifeval_sample.jsonl")


def test_every_prompt_of_both_samples_is_known():
    known = {(prompt.benchmark, prompt.key) for prompt in benchmark_prompts()}
    assert known == {("ifbench", str(row["key"])) for row in IFBENCH_ROWS} | {
        ("ifeval", str(row["key"])) for row in IFEVAL_ROWS
    }


@pytest.mark.parametrize(("rows", "name"), [(IFBENCH_ROWS, "ifbench"), (IFEVAL_ROWS, "ifeval")])
def test_each_shipped_sample_is_refused_as_seeds(rows, name):
    seeds = ["Write a haiku about the sea."] + [row["prompt"] for row in rows]
    with pytest.raises(ValueError, match=rf"{len(rows)} seeds in column 'prompt' match .*row 1: {name} key"):
        check_not_benchmark_prompts(seeds, column="prompt")
    assert [position for position, _ in find_benchmark_prompts(seeds)] == list(range(1, len(rows) + 1))


def test_near_copies_are_refused():
    prompt = IFBENCH_ROWS[0]["prompt"]
    task = prompt[: prompt.index("Include keyword")].strip()  # the WildChat question without IFBench's constraint
    assert len(task) >= MIN_CONTAINED_CHARS
    variants = [
        "  " + prompt.upper().replace(" ", "\n  ") + " ",  # case and whitespace
        task,  # the constraint cut off
        "Answer in French. " + prompt,  # a sentence added
    ]
    matches = find_benchmark_prompts(variants)
    assert [(position, p.benchmark, p.key) for position, p in matches] == [(i, "ifbench", "0") for i in range(3)]


def test_ordinary_seeds_pass():
    seeds = [
        json.loads(line)["instruction"]
        for line in files("instrl_trl.data")
        .joinpath("quickstart_seeds.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    check_not_benchmark_prompts(seeds)
    # a short phrase shared with a prompt is not a copy
    short = IFBENCH_ROWS[0]["prompt"][: MIN_CONTAINED_CHARS - 1]
    check_not_benchmark_prompts([short, None, "Explain photosynthesis."])


def test_message_lists_five_rows_and_counts_the_rest():
    seeds = [row["prompt"] for row in IFBENCH_ROWS[:7]]
    with pytest.raises(ValueError) as error:
        check_not_benchmark_prompts(seeds)
    message = str(error.value)
    assert message.count("row ") == 5 and "(and 2 more)" in message
    assert "remove these rows from the seeds" in message


def test_doctest():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(check_not_benchmark_prompts, globs=vars(module)):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
