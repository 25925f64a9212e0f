"""
Runs IFTrain's reference checkers (allenai/open-instruct `open_instruct/IFEvalG`) from a local checkout, offline.

The verdict of one constraint is the one open-instruct's `IFEvalVerifier` (`open_instruct/ground_truth_utils.py`)
adds to the reward: null kwargs dropped, `build_description(**kwargs)`, then `response.strip() and
check_following(response)`. (The verifier first cuts a `<think>` section and `<answer>` tags off the prediction and
strips it; the reference responses carry none of those, and the verdict is the checker's on the text it is given.)
NLTK data: punkt_tab from `ensure_punkt_tab`; `nltk.download` is replaced so that nothing is fetched.
"""

import copy
import random
import sys
from pathlib import Path


def load_registry(checkout: str | Path):
    """Imports `open_instruct.IFEvalG.instructions_registry` from `checkout` with NLTK data offline; returns it."""
    import nltk

    from instrl_trl.constraints import ensure_punkt_tab

    ensure_punkt_tab()
    nltk.download = lambda *args, **kwargs: False
    sys.path.insert(0, str(Path(checkout).resolve()))
    from open_instruct.IFEvalG import instructions_registry

    return instructions_registry


def upstream_verdict(registry, instruction_id: str, kwargs: dict, response: str) -> dict:
    """The reference verdict of one (constraint, response), or the error its code raised; `{"verdict": bool}`."""
    state = random.getstate()
    random.seed(0)  # every argument is given, so nothing should be drawn: checked below
    try:
        checker = registry.INSTRUCTION_DICT[instruction_id](instruction_id)
        checker.build_description(**{k: v for k, v in copy.deepcopy(kwargs).items() if v is not None})
        if random.getstate() != random.Random(0).getstate():
            return {"error": "the reference drew an argument at random"}
        verdict = bool(response.strip()) and bool(checker.check_following(response))
    except Exception as error:  # noqa: BLE001 - a crash of the reference code is a result to record, not to hide
        return {"error": f"{type(error).__name__}: {error}"[:200]}
    finally:
        random.setstate(state)
    return {"verdict": verdict}
