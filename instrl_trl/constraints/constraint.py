"""The [`Constraint`] type: one verifiable instruction of lm-eval's IFEval registry, with all its arguments."""

import json
from dataclasses import dataclass, field
from typing import Any

from .checking import InvalidReferenceError, build_checker, drop_empty_kwargs, follows


@dataclass(frozen=True)
class Constraint:
    r"""
    A verifiable constraint: an lm-eval IFEval instruction id with the arguments of its `build_description`.

    The text and the check are lm-eval's own, built by [`~instrl_trl.constraints.build_checker`], the code path the
    benchmark metric uses too. A constraint must name every argument of `build_description`, each in range, so its
    text and check never depend on lm-eval's unseeded random choices.

    Parameters:
        instruction_id (`str`):
            Id in lm-eval's `INSTRUCTION_DICT`, for example `"detectable_format:title"`.
        kwargs (`dict[str, Any]`, *optional*, defaults to `{}`):
            Every argument of the class's `build_description`. Empty values (`None`, `0`, `""`, `[]`) are dropped,
            as lm-eval's `process_results` drops them.

    Example:

    ```python
    >>> from instrl_trl.constraints import Constraint
    >>> constraint = Constraint("punctuation:no_comma")
    >>> constraint.description()
    'In your entire response, refrain from the use of any commas.'
    >>> constraint.check("No commas here."), constraint.check("Commas, here.")
    (True, False)

    ```
    """

    instruction_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "kwargs", drop_empty_kwargs(dict(self.kwargs)))
        try:
            self._checker()
        except InvalidReferenceError as error:
            raise ValueError(f"Invalid constraint: {error}. Give every argument of the checker, in range.") from None

    def __hash__(self) -> int:
        return hash((self.instruction_id, json.dumps(self.kwargs, sort_keys=True, default=str)))

    def _checker(self):
        return build_checker(self.instruction_id, self.kwargs)

    def description(self) -> str:
        """Returns the constraint's instruction text, as lm-eval writes it."""
        return self._checker()[1]

    def check(self, response: str) -> bool:
        """Returns whether `response` follows the constraint (lm-eval's strict verdict; an empty one follows none)."""
        return follows(self._checker()[0], response)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-friendly dict `{"instruction_id": ..., "kwargs": {...}}`."""
        kwargs = {key: list(value) if isinstance(value, tuple) else value for key, value in self.kwargs.items()}
        return {"instruction_id": self.instruction_id, "kwargs": kwargs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Constraint":
        """Builds a constraint from [`~Constraint.to_dict`]'s output (or an IFEval row's id and kwargs)."""
        return cls(data["instruction_id"], dict(data.get("kwargs") or {}))
