"""Reading the reference files of verdicts made by upstream code (`*_references.jsonl.gz`)."""

import gzip
import json
from pathlib import Path


def read_references(path: Path) -> tuple[dict, list[dict]]:
    """A reference file's header line (the pinned commit and package versions) and its rows."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        header, *rows = (json.loads(line) for line in lines)
    return header, rows
