"""
Regenerates `iftrain_references.jsonl.gz`: the verdicts of IFTrain's reference checkers (allenai/open-instruct
`open_instruct/IFEvalG`) on seeded (constraint, response) pairs for each of its 29 training constraints.

Usage (a checkout of github.com/allenai/open-instruct; the fixture was made at commit ebca9f7d4, the last one to touch
`open_instruct/IFEvalG/`):

    git clone https://github.com/allenai/open-instruct && git -C open-instruct checkout ebca9f7d4
    PYTHONPATH=. python tests/constraints/make_iftrain_references.py open-instruct

Only `open_instruct/__init__.py` and `open_instruct/IFEvalG/` are imported (they need nltk, absl-py, immutabledict
and langdetect). Each line: `instruction_id`, `kwargs`, `response`, and the reference's `verdict`, or `error` when its
code raised.
"""

import argparse
import gzip
import io
import json
import random
import subprocess
import sys
from importlib import metadata
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parent))

from iftrain_responses import corpus, draw_kwargs, edits, targeted
from iftrain_upstream import load_registry, upstream_verdict

from instrl_trl.constraints.iftrain import CHECKERS


FIXTURE = Path(__file__).parent / "iftrain_references.jsonl.gz"
DRAWS_PER_ID = 6


def _commit(checkout: Path, given: str | None) -> str:
    if given:
        return given
    try:
        return subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", help="path to a checkout of allenai/open-instruct")
    parser.add_argument("--commit", help="the checkout's commit, when it is not a git work tree (an exported tree)")
    parser.add_argument("--out", default=str(FIXTURE))
    args = parser.parse_args()
    checkout = Path(args.checkout)
    registry = load_registry(checkout)
    commit = _commit(checkout, args.commit)
    real = corpus()
    rng = random.Random("iftrain-references")
    written = errors = 0
    seen = set()
    # mtime=0: the same references make the same bytes, so a regenerated file shows no diff
    with io.TextIOWrapper(gzip.GzipFile(args.out, "wb", compresslevel=9, mtime=0), encoding="utf-8") as out:
        versions = {name: metadata.version(name) for name in ("nltk",)}  # Treebank tokens and punkt_tab
        out.write(json.dumps({"open_instruct_commit": commit, "ids": len(CHECKERS), "versions": versions}) + "\n")
        for instruction_id in CHECKERS:
            for _ in range(DRAWS_PER_ID):
                kwargs = draw_kwargs(instruction_id, rng, real)
                responses = []
                for base in rng.sample(real, 2):
                    responses += targeted(instruction_id, kwargs, base, rng)
                for base in rng.sample(real, 2):
                    responses += edits(base, rng)
                responses += ["", "   \n"]
                for response in responses:
                    key = (instruction_id, json.dumps(kwargs, sort_keys=True), response)
                    if key in seen:
                        continue
                    seen.add(key)
                    record = {"instruction_id": instruction_id, "kwargs": kwargs, "response": response}
                    record.update(upstream_verdict(registry, instruction_id, kwargs, response))
                    errors += "error" in record
                    written += 1
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{written} references ({errors} where the reference raised) from commit {commit} -> {args.out}")  # noqa: T201


if __name__ == "__main__":
    main()
