"""
Regenerates `ifbench_references.jsonl.gz`: IFBench's own verdicts on synthetic responses to its 300 test rows.

Usage (a checkout of github.com/allenai/IFBench; the fixture was made at commit db69a6f):

    PYTHONPATH=. python tests/constraints/make_ifbench_references.py /path/to/IFBench

Each line: `key`, `instruction_id_list`, `kwargs` (nulls dropped), `response`, and IFBench's `strict` and `loose`
verdict lists, or `error` when IFBench's code raised (the perceptron tagger is absent offline).
"""

import argparse
import gzip
import json
import random
import subprocess
import sys
from importlib import metadata
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))

from ifbench_responses import synthetic_responses
from ifbench_upstream import load_evaluation_lib, upstream_verdicts


FIXTURE = Path(__file__).parent / "ifbench_references.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", help="path to a checkout of allenai/IFBench")
    parser.add_argument("--out", default=str(FIXTURE))
    args = parser.parse_args()
    checkout = Path(args.checkout)
    evaluation_lib = load_evaluation_lib(checkout)
    rows = [json.loads(line) for line in (checkout / "data" / "IFBench_test.jsonl").read_text().splitlines()]
    samples = {}
    sample_file = checkout / "data" / "sample_output.jsonl"
    if sample_file.exists():
        for line in sample_file.read_text().splitlines():
            sample = json.loads(line)
            samples[sample["prompt"].strip()] = sample["response"]
    try:
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        commit = "unknown"
    answers = [samples[key] for key in sorted(samples)]
    pick = random.Random("ifbench-references")
    written = errors = 0
    with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=9) as out:
        # The verdicts of `format:emoji` and `words:odd_even_syllables` depend on these packages' data.
        versions = {name: metadata.version(name) for name in ("nltk", "emoji", "syllapy")}
        out.write(json.dumps({"ifbench_commit": commit, "rows": len(rows), "versions": versions}) + "\n")
        for row in rows:
            kwargs = [{k: v for k, v in kw.items() if v is not None} for kw in row["kwargs"]]
            others = pick.sample(answers, 2) if answers else []
            for response in synthetic_responses(row, samples.get(row["prompt"].strip()), others):
                record = {"key": row["key"], "instruction_id_list": row["instruction_id_list"], "kwargs": kwargs}
                record["response"] = response
                record.update(upstream_verdicts(evaluation_lib, row, response))
                errors += "error" in record
                written += 1
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{written} references ({errors} where IFBench raised) from commit {commit} -> {args.out}")  # noqa: T201


if __name__ == "__main__":
    main()
