"""
The families of verifiable constraints: `ifeval` (lm-eval's IFEval registry) and `ifbench` (IFBench's checkers in
[`instrl_trl.constraints.ifbench`]). Every instruction id belongs to exactly one; a recipe chooses which families
`add_constraints` draws from.
"""

from collections.abc import Iterable

from .ifbench import CHECKERS
from .registry import ifeval_registry


CONSTRAINT_FAMILIES = ("ifeval", "ifbench")
DEFAULT_CONSTRAINT_FAMILIES = ("ifeval",)


def family_of(instruction_id: str) -> str | None:
    """The family of `instruction_id` (`"ifeval"` or `"ifbench"`), or `None` when neither registry has it."""
    if instruction_id in ifeval_registry().checkers:
        return "ifeval"
    if instruction_id in CHECKERS:
        return "ifbench"
    return None


def check_constraint_families(families: str | Iterable[str], name: str = "constraint_families") -> tuple[str, ...]:
    r"""
    Validates a choice of constraint families and returns it as a tuple, each family once, in the order given.

    Args:
        families (`str` or `Iterable[str]`):
            One family name or several, from [`CONSTRAINT_FAMILIES`].
        name (`str`, *optional*, defaults to `"constraint_families"`):
            The field the value came from, named in the error.

    Raises:
        `ValueError`: the value is empty or names an unknown family; the message names `name` and the valid values.
    """
    values = [families] if isinstance(families, str) else families
    try:
        values = list(values)
    except TypeError:
        values = None
    if not values or not all(isinstance(value, str) for value in values):
        raise ValueError(
            f"`{name}` must be a non-empty list of constraint families from {list(CONSTRAINT_FAMILIES)}, got "
            f"{families!r}; e.g. `{name}: [ifeval, ifbench]`."
        )
    unknown = [value for value in values if value not in CONSTRAINT_FAMILIES]
    if unknown:
        raise ValueError(
            f"`{name}` has unknown constraint famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; valid values: "
            f"{', '.join(CONSTRAINT_FAMILIES)}."
        )
    return tuple(dict.fromkeys(values))
