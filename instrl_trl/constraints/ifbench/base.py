"""
The contract every IFBench checker follows, and the text primitives the checkers share.

A checker is built once from a row's kwargs ([`Checker.build`], nulls already dropped) and then answers
[`Checker.check`] for any response. Its arguments are declared in `params` (name -> kind), so a missing or malformed
argument fails at build time with the field named, before any response is scored. IFBench writes counts as floats
(`5.0`); an integral float is accepted wherever a count is meant, as IFBench itself accepts it.

The primitives reproduce IFBench's own tokenisation choices (NLTK's Punkt sentences and Treebank words, `\\w+` word
counts, ASCII punctuation stripping), because a verdict that agrees with IFBench's must see the same units.
"""

import functools
import string
from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar


PUNCTUATION = string.punctuation
# IFBench strips "punctuation plus space" from word edges in many checkers.
PUNCTUATION_AND_SPACE = string.punctuation + " "
_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)


class CheckerUnavailable(RuntimeError):
    """A checker needs data that cannot be had offline; the caller skips its rows with this message as reason."""


class Checker:
    """
    One IFBench instruction id: arguments fixed at build time, a pure verdict per response.

    Subclasses set `params` (argument name -> one of `"count"`, `"number"`, `"text"`) and implement `check`.
    Every declared argument is required: IFBench fills missing ones at random, which would make a verdict depend on
    the run, so here a missing argument is an error.
    """

    params: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs: Any):
        for name, value in kwargs.items():
            setattr(self, name, value)

    @classmethod
    def build(cls, instruction_id: str = "", **kwargs: Any) -> "Checker":
        unknown = sorted(set(kwargs) - set(cls.params))
        if unknown:
            raise ValueError(
                f"{instruction_id or cls.__name__}: unexpected kwargs {unknown}; it takes {sorted(cls.params)}."
            )
        values = {}
        for name, kind in cls.params.items():
            if kwargs.get(name) is None:
                raise ValueError(f"{instruction_id or cls.__name__}: kwarg `{name}` is required; give it in kwargs.")
            values[name] = _coerce(instruction_id or cls.__name__, name, kind, kwargs[name])
        return cls(**values)

    def check(self, response: str) -> bool:
        raise NotImplementedError


def _coerce(owner: str, name: str, kind: str, value: Any) -> Any:
    if kind == "text":
        if not isinstance(value, str):
            raise TypeError(f"{owner}: kwarg `{name}` must be a string, got {value!r}.")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: kwarg `{name}` must be a number, got {value!r}.")
    if kind == "number":
        return value
    if value != int(value):
        raise ValueError(f"{owner}: kwarg `{name}` must be a whole number, got {value!r}.")
    return int(value)


def drop_nulls(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """IFBench rows carry every argument name of every checker, unused ones null; a checker sees only its own."""
    return {name: value for name, value in (kwargs or {}).items() if value is not None}


def strip_punctuation(text: str) -> str:
    """Deletes every ASCII punctuation character (not only at word edges), as IFBench's `translate` calls do."""
    return text.translate(_DROP_PUNCTUATION)


@functools.cache
def _word_run_tokenizer():
    import nltk

    return nltk.tokenize.RegexpTokenizer(r"\w+")


def word_runs(text: str) -> list[str]:
    r"""
    Runs of word characters, through NLTK's `RegexpTokenizer(r"\w+")` as IFBench counts words.

    Not `re.findall`: since NLTK 3.10 its tokenizer compiles with the `regex` engine, whose `\w` also matches the
    emoji variation selector and the zero-width joiner, so the two disagree on texts with emoji. Calling NLTK keeps
    the verdicts equal to IFBench's under whichever NLTK is installed.
    """
    return _word_run_tokenizer().tokenize(text)


def count_word_runs(text: str) -> int:
    return len(word_runs(text))


@functools.cache
def _nltk():
    # Imported late so that importing the checkers costs nothing until a sentence is split, and so the parent
    # package (which may import this subpackage) is fully initialised before its punkt helper is called.
    import nltk

    from instrl_trl.constraints import ensure_punkt_tab

    ensure_punkt_tab()
    return nltk


def sentences(text: str) -> list[str]:
    """NLTK's English Punkt sentences (punkt_tab, installed offline)."""
    return _nltk().sent_tokenize(text)


def treebank_words(text: str) -> list[str]:
    """NLTK's `word_tokenize`: Punkt sentences, then Treebank words (punctuation marks are tokens of their own)."""
    return _nltk().word_tokenize(text)


@functools.cache
def english_stopwords() -> frozenset[str]:
    """NLTK's English stopwords list (198 words), shipped in `assets/english_stopwords.txt`; see `assets/README.md`."""
    text = resources.files(__package__).joinpath("assets/english_stopwords.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.split("\n") if line)
