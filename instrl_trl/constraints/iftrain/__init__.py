"""
IFTrain's verifiable training constraints (the IF-RLVR constraints of allenai/IFBench, arXiv 2507.02833), checked
offline.

Our own implementation of the 29 training checkers that IFBench's authors release beside their benchmark; the
training-time registry lives in allenai/open-instruct (`open_instruct/IFEvalG`). The checkers give exactly the
reference's verdicts at open-instruct commit ebca9f7d4 (2026-04-09, the last to touch `IFEvalG/`) and are tested
against verdicts produced by that code. IFTrain is the family meant for training data beside IFEval; IFBench's test
constraints (`instrl_trl.constraints.ifbench`) score the benchmark and never make training data.

Data: NLTK's punkt_tab (through `instrl_trl.constraints.ensure_punkt_tab`) for Treebank tokens; nothing is
downloaded. No IFTrain checker needs data that cannot be had offline.
"""

from .base import RELATIONS, IFTrainChecker
from .registry import CHECKERS, build_checker, follows, instruction_ids


__all__ = ["CHECKERS", "RELATIONS", "IFTrainChecker", "build_checker", "follows", "instruction_ids"]
