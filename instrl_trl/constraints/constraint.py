"""
The [`Constraint`] type: one verifiable instruction of lm-eval's IFEval registry, IFTrain's or IFBench's, and its
arguments.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from . import ifbench, iftrain
from .checking import InvalidReferenceError, build_checker, drop_empty_kwargs, follows
from .families import family_of
from .ifbench.base import drop_nulls
from .ifbench.texts import describe as describe_ifbench
from .iftrain.texts import describe as describe_iftrain
from .registry import ifeval_registry


# The families checked by this project's own checkers: family -> (build_checker, describe); IFEval's are lm-eval's.
_OWN_CHECKERS = {
    "ifbench": (ifbench.build_checker, describe_ifbench),
    "iftrain": (iftrain.build_checker, describe_iftrain),
}


@dataclass(frozen=True)
class Constraint:
    r"""
    A verifiable constraint: an instruction id of lm-eval's IFEval registry, of IFTrain's or of IFBench's, with its
    arguments.

    The text and the check dispatch on the id's family. An IFEval id gets lm-eval's own text and check, built by
    [`~instrl_trl.constraints.build_checker`], the code path the benchmark metric uses too. An IFTrain or IFBench id
    gets the checker of [`instrl_trl.constraints.iftrain`] or [`instrl_trl.constraints.ifbench`] (the reference's
    verdicts) and this project's text ([`~instrl_trl.constraints.iftrain.texts.TEXTS`],
    [`~instrl_trl.constraints.ifbench.texts.TEXTS`]; ids that replace the task have a check but no text). A
    constraint must name every argument of its checker, each in range, so its text and check never depend on the
    reference code's unseeded random choices.

    Parameters:
        instruction_id (`str`):
            Id in lm-eval's `INSTRUCTION_DICT`, for example `"detectable_format:title"`, an IFTrain id, for example
            `"keywords:word_once"`, or an IFBench id, for example `"count:numbers"`.
        kwargs (`dict[str, Any]`, *optional*, defaults to `{}`):
            Every argument of the checker. For an IFEval id, empty values (`None`, `0`, `""`, `[]`) are dropped, as
            lm-eval's `process_results` drops them; for an IFTrain or IFBench id, `None` values are, as their
            reference code drops them.

    Example:

    ```python
    >>> from instrl_trl.constraints import Constraint
    >>> constraint = Constraint("punctuation:no_comma")
    >>> constraint.description()
    'In your entire response, refrain from the use of any commas.'
    >>> constraint.check("No commas here."), constraint.check("Commas, here.")
    (True, False)
    >>> numbers = Constraint("count:numbers", {"N": 2})
    >>> numbers.family, numbers.check("Pi is 3.14 and e is 2.72."), numbers.check("Pi is 3.14.")
    ('ifbench', True, False)
    >>> no_dots = Constraint("punctuation:punctuation_dot")
    >>> no_dots.family, no_dots.check("No dots here"), no_dots.check("A dot.")
    ('iftrain', True, False)

    ```
    """

    instruction_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if family_of(self.instruction_id) in _OWN_CHECKERS:
            object.__setattr__(self, "kwargs", drop_nulls(self.kwargs))
        else:
            object.__setattr__(self, "kwargs", drop_empty_kwargs(dict(self.kwargs)))
        try:
            self._checker()
        except InvalidReferenceError as error:
            raise ValueError(f"Invalid constraint: {error}. Give every argument of the checker, in range.") from None
        except (ValueError, TypeError) as error:  # IFTrain's and IFBench's checkers name the id and the argument
            raise ValueError(f"Invalid constraint: {error}") from None

    def __hash__(self) -> int:
        return hash((self.instruction_id, json.dumps(self.kwargs, sort_keys=True, default=str)))

    @property
    def family(self) -> str:
        """The constraint family of the id: `"ifeval"`, `"iftrain"` or `"ifbench"`."""
        return family_of(self.instruction_id)

    def _checker(self):
        family = family_of(self.instruction_id)
        if family in _OWN_CHECKERS:
            return _OWN_CHECKERS[family][0](self.instruction_id, self.kwargs)
        if self.instruction_id not in ifeval_registry().checkers:
            raise InvalidReferenceError(
                f"unknown instruction id {self.instruction_id!r}; valid ids: {', '.join(ifeval_registry().checkers)}, "
                f"IFTrain's: {', '.join(iftrain.CHECKERS)}, or IFBench's: {', '.join(ifbench.CHECKERS)}"
            )
        return build_checker(self.instruction_id, self.kwargs)

    def description(self) -> str:
        """
        Returns the constraint's instruction text: lm-eval's for an IFEval id, this project's for an IFTrain or IFBench
        id.
        """
        family = family_of(self.instruction_id)
        if family in _OWN_CHECKERS:
            return _OWN_CHECKERS[family][1](self.instruction_id, self.kwargs)
        return self._checker()[1]

    def check(self, response: str) -> bool:
        """
        Returns whether `response` follows the constraint (the strict verdict of lm-eval, of IFTrain's reference or of
        IFBench; an empty response follows none).
        """
        if family_of(self.instruction_id) in _OWN_CHECKERS:
            return bool(response.strip()) and self._checker().check(response)
        return follows(self._checker()[0], response)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-friendly dict `{"instruction_id": ..., "kwargs": {...}}`."""
        kwargs = {key: list(value) if isinstance(value, tuple) else value for key, value in self.kwargs.items()}
        return {"instruction_id": self.instruction_id, "kwargs": kwargs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Constraint":
        """Builds a constraint from [`~Constraint.to_dict`]'s output (or a benchmark row's id and kwargs)."""
        return cls(data["instruction_id"], dict(data.get("kwargs") or {}))
