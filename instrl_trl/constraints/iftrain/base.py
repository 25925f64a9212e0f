"""
The contract of an IFTrain checker, and the argument checks that keep its verdict reproducible.

An IFTrain checker follows the contract of the IFBench checkers ([`~instrl_trl.constraints.ifbench.Checker`]): built
once from its kwargs, then a pure verdict per response. IFTrain's reference code (allenai/open-instruct, `IFEvalG`)
replaces a *falsy* argument by a random draw (`if not n_start: n_start = random.randint(...)`), so a count of `0`
or an empty keyword gives a verdict that changes from run to run. Here such an argument is an error at build time,
naming the field: [`IFTrainChecker`] adds the checks, declared per class.
"""

import re
from typing import Any, ClassVar

from ..ifbench.base import Checker


RELATIONS = ("less than", "at least")


class IFTrainChecker(Checker):
    """
    One IFTrain instruction id. Besides `params` (name -> `"count"`, `"number"` or `"text"`), a subclass declares:

    - `positive`: counts that must be at least 1 (the reference draws a falsy one at random);
    - `relations`: arguments that must be one of [`RELATIONS`];
    - `patterns`: texts the reference uses as regular expressions (they must compile; a keyword like `"(river"` makes
      the reference crash on every response, so it is refused up front).

    Every `text` argument must be non-blank after stripping, as the reference strips it and redraws an empty one.
    """

    positive: ClassVar[tuple[str, ...]] = ()
    relations: ClassVar[tuple[str, ...]] = ()
    patterns: ClassVar[tuple[str, ...]] = ()
    # text arguments the reference does not strip (the copy checkers compare the prompt as given)
    unstripped: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def build(cls, instruction_id: str = "", **kwargs: Any) -> "IFTrainChecker":
        checker = super().build(instruction_id, **kwargs)
        owner = instruction_id or cls.__name__
        for name, kind in cls.params.items():
            value = getattr(checker, name)
            if kind == "text" and name not in cls.relations:
                if not value.strip():
                    raise ValueError(f"{owner}: kwarg `{name}` must be a non-blank string, got {value!r}.")
                if name not in cls.unstripped:
                    setattr(checker, name, value.strip())
        for name in cls.positive:
            if getattr(checker, name) < 1:
                raise ValueError(
                    f"{owner}: kwarg `{name}` must be at least 1, got {getattr(checker, name)!r} (the reference draws "
                    "a zero at random)."
                )
        for name in cls.relations:
            if getattr(checker, name) not in RELATIONS:
                raise ValueError(f"{owner}: kwarg `{name}` must be one of {list(RELATIONS)}, got {kwargs[name]!r}.")
        for name in cls.patterns:
            try:
                re.compile(getattr(checker, name))
            except re.error as error:
                raise ValueError(
                    f"{owner}: kwarg `{name}` is matched as a regular expression by the reference checker, and "
                    f"{getattr(checker, name)!r} is not one ({error})."
                ) from None
        checker.validate(owner)
        return checker

    def validate(self, owner: str) -> None:
        """Checks that span several arguments; raises `ValueError` naming them."""


def compare(count: int, relation: str, threshold: int) -> bool:
    """IFEval's two relations: `"less than"` is `count < threshold`, `"at least"` is `count >= threshold`."""
    return count < threshold if relation == "less than" else count >= threshold
