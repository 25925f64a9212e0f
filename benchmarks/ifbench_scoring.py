"""
Scoring speed of our IFBench checkers against IFBench's own scoring, side by side, on the same rows.

IFBench is not on any package index, so its code comes from a local checkout of github.com/allenai/IFBench, given
as the first argument (it is imported offline: `nltk.download` is stubbed and NLTK pointed at offline data, see
`tests/constraints/ifbench_upstream.py`). Rows: IFBench's 300 test prompts; responses: the model answers of its
`data/sample_output.jsonl` and three edits of each (a chatty first line, lower case, asterisks removed), so 900+
rows of real length. Rows with `words:start_verb` are left out of both (the tagger is not available offline).
The baseline is IFBench's `test_instruction_following_strict` then `..._loose`, as its `run_eval.py` runs them;
both sides are warmed up first and must agree on every verdict. Printed last: the ratio ours / IFBench.

    python benchmarks/ifbench_scoring.py /path/to/IFBench
"""

import argparse
import json
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instrl_trl.constraints.ifbench import check_row
from tests.constraints.ifbench_upstream import load_evaluation_lib, upstream_verdicts


def make_rows(checkout: Path) -> list[tuple[dict, str]]:
    rows = [json.loads(line) for line in (checkout / "data" / "IFBench_test.jsonl").read_text().splitlines()]
    answers = {}
    for line in (checkout / "data" / "sample_output.jsonl").read_text().splitlines():
        sample = json.loads(line)
        answers[sample["prompt"].strip()] = sample["response"]
    pairs = []
    for row in rows:
        answer = answers.get(row["prompt"].strip())
        if answer is None or "words:start_verb" in row["instruction_id_list"]:
            continue
        for response in (answer, "Sure, here is my answer:\n" + answer, answer.lower(), answer.replace("*", "")):
            pairs.append((row, response))
    return pairs


def _scores(verdicts: list[tuple[list[bool], list[bool]]]) -> dict[str, float]:
    strict = [s for s, _ in verdicts]
    loose = [lo for _, lo in verdicts]
    return {
        "prompt_level_strict": sum(map(all, strict)) / len(strict),
        "inst_level_strict": sum(map(sum, strict)) / sum(map(len, strict)),
        "prompt_level_loose": sum(map(all, loose)) / len(loose),
        "inst_level_loose": sum(map(sum, loose)) / sum(map(len, loose)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("checkout", type=Path, help="path to a checkout of github.com/allenai/IFBench")
    cli = parser.parse_args()

    evaluation_lib = load_evaluation_lib(cli.checkout)
    pairs = make_rows(cli.checkout)
    for row, response in pairs[:20]:  # warm-up: punkt, stopwords, syllapy's dictionary
        check_row(response, row["instruction_id_list"], row["kwargs"])
        upstream_verdicts(evaluation_lib, row, response)

    start = time.perf_counter()
    ours = [check_row(response, row["instruction_id_list"], row["kwargs"]) for row, response in pairs]
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [upstream_verdicts(evaluation_lib, row, response) for row, response in pairs]
    theirs_seconds = time.perf_counter() - start

    ours_verdicts = [(v.strict, v.loose) for v in ours]
    theirs_verdicts = [(v["strict"], v["loose"]) for v in theirs]
    differing = sum(a != b for a, b in zip(ours_verdicts, theirs_verdicts, strict=True))
    if differing or any(v.skipped for v in ours):
        raise RuntimeError(f"{differing} of {len(pairs)} rows differ from IFBench's verdicts")

    chars = sorted(len(response) for _, response in pairs)
    constraints = sum(len(row["instruction_id_list"]) for row, _ in pairs) / len(pairs)
    ours_rate, theirs_rate = len(pairs) / ours_seconds, len(pairs) / theirs_seconds
    shape = f"characters a response: median {chars[len(chars) // 2]}"
    print(f"{len(pairs)} rows, {constraints:.2f} constraints a row, {shape}")  # noqa: T201
    scores = _scores(theirs_verdicts)
    print("scores (equal): " + ", ".join(f"{name}={value:.4f}" for name, value in scores.items()))  # noqa: T201
    print(f"ours:    {ours_rate:8.0f} responses/s ({ours_seconds:.2f} s)")  # noqa: T201
    print(f"IFBench: {theirs_rate:8.0f} responses/s ({theirs_seconds:.2f} s)")  # noqa: T201
    print(f"ours / IFBench: {ours_rate / theirs_rate:.1f}x")  # noqa: T201


if __name__ == "__main__":
    main()
