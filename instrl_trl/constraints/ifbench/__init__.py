"""
IFBench's verifiable constraints (allenai/IFBench, arXiv 2507.02833), checked offline.

Our own implementation of the 58 checkers of IFBench's registry (`count`, `ratio`, `words`, `sentence`, `format`,
`custom`, `repeat`), written to give exactly IFBench's verdicts at commit db69a6f (2026-08-19) and tested against
verdicts produced by IFBench's own code. [`check_row`] scores one response strictly and loosely.

Data comes from installed packages or files shipped here: NLTK's punkt_tab (through
`instrl_trl.constraints.ensure_punkt_tab`), NLTK's English stopwords (`assets/english_stopwords.txt`), `emoji` and
`syllapy`. `words:start_verb` needs NLTK's perceptron tagger, which no package index ships: its rows are skipped
with the reason unless the tagger is already installed. Nothing here calls `nltk.download`.

IFBench's test prompts are a benchmark: never use them (or `instrl_trl/data/ifbench_sample.jsonl`) as seeds or
training data.
"""

from .base import Checker, CheckerUnavailable
from .registry import CHECKERS, build_checker, instruction_ids
from .scoring import InvalidIFBenchRowError, RowVerdict, build_checkers, check_row, loose_variants


__all__ = [
    "CHECKERS",
    "Checker",
    "CheckerUnavailable",
    "InvalidIFBenchRowError",
    "RowVerdict",
    "build_checker",
    "build_checkers",
    "check_row",
    "instruction_ids",
    "loose_variants",
]
