"""
Runs allenai/IFBench's own scoring from a local checkout, offline, for reference verdicts and the benchmark.

IFBench's `instructions_util` calls `nltk.download` at import; here `nltk.download` is replaced by a function that
only records the request, and NLTK is pointed at a scratch data folder holding punkt_tab (from
`ensure_punkt_tab`) and the English stopwords this project ships. The perceptron tagger stays absent, so IFBench
itself fails on `words:start_verb`; those rows are recorded as errors.
"""

import copy
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path


def load_evaluation_lib(checkout: str | Path):
    """Imports IFBench's `evaluation_lib` from `checkout` with NLTK data offline; returns the module."""
    import nltk

    from instrl_trl.constraints import ensure_punkt_tab

    data_dir = Path(tempfile.mkdtemp(prefix="ifbench_nltk_"))
    shutil.copytree(Path(ensure_punkt_tab()) / "tokenizers", data_dir / "tokenizers")
    stopwords = resources.files("instrl_trl.constraints.ifbench").joinpath("assets/english_stopwords.txt")
    (data_dir / "corpora" / "stopwords").mkdir(parents=True)
    (data_dir / "corpora" / "stopwords" / "english").write_text(stopwords.read_text(encoding="utf-8"))
    nltk.data.path.insert(0, str(data_dir))
    requested = []
    nltk.download = lambda *args, **kwargs: requested.append(args) or False
    sys.path.insert(0, str(Path(checkout).resolve()))
    import evaluation_lib

    return evaluation_lib


def upstream_verdicts(evaluation_lib, row: dict, response: str) -> dict:
    """IFBench's strict then loose pass on one response (in that order, as its `run_eval.py`); errors recorded."""
    example = evaluation_lib.InputExample(
        key=row["key"],
        instruction_id_list=list(row["instruction_id_list"]),
        prompt=row["prompt"],
        kwargs=copy.deepcopy(row["kwargs"]),
    )
    responses = {row["prompt"]: response}
    try:
        strict = evaluation_lib.test_instruction_following_strict(example, responses).follow_instruction_list
        loose = evaluation_lib.test_instruction_following_loose(example, responses).follow_instruction_list
    except Exception as error:  # noqa: BLE001 - a crash of IFBench's code is a result to record, not to hide
        return {"error": f"{type(error).__name__}: {error}"[:200]}
    return {"strict": list(strict), "loose": list(loose)}
