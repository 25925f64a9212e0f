"""
The families of verifiable constraints: `ifeval` (lm-eval's IFEval registry), `iftrain` (IFTrain's training checkers
in [`instrl_trl.constraints.iftrain`]) and `ifbench` (IFBench's checkers in [`instrl_trl.constraints.ifbench`]).
Every instruction id belongs to exactly one; a recipe chooses which families `add_constraints` draws from, among the
families meant for training ([`TRAINING_CONSTRAINT_FAMILIES`]).

IFBench's constraints are the *test* constraints of an out-of-distribution benchmark: its authors keep them apart from
the training constraints they release as IFTrain "to prevent contamination" (allenai/IFBench, huggingface.co/papers/
2507.02833), and train on IFTrain plus IFEval (their IF-RLVR recipe). So `ifbench` scores IFBench rows and is refused
wherever training data is drawn, and `[ifeval, iftrain]` is the training set-up of the paper.
"""

from collections.abc import Iterable

from .ifbench import CHECKERS as IFBENCH_CHECKERS
from .iftrain import CHECKERS as IFTRAIN_CHECKERS
from .registry import ifeval_registry


# IFTrain's training constraints, the family meant for training beside IFEval's
IFTRAIN_FAMILY = "iftrain"
CONSTRAINT_FAMILIES = ("ifeval", IFTRAIN_FAMILY, "ifbench")
# Families of a benchmark's held-out test constraints: they score the benchmark, they never make training data
TEST_CONSTRAINT_FAMILIES = ("ifbench",)
TRAINING_CONSTRAINT_FAMILIES = tuple(name for name in CONSTRAINT_FAMILIES if name not in TEST_CONSTRAINT_FAMILIES)
DEFAULT_CONSTRAINT_FAMILIES = ("ifeval",)


def family_of(instruction_id: str) -> str | None:
    """The family of `instruction_id` (`"ifeval"`, `"iftrain"` or `"ifbench"`), or `None` when no registry has it."""
    if instruction_id in ifeval_registry().checkers:
        return "ifeval"
    if instruction_id in IFTRAIN_CHECKERS:
        return IFTRAIN_FAMILY
    if instruction_id in IFBENCH_CHECKERS:
        return "ifbench"
    return None


def training_families_fix() -> str:
    """What to set instead of a test family: IFTrain's training constraints beside IFEval's (the IF-RLVR set-up)."""
    return (
        f"IFTrain's training constraints are the family for training: use `[ifeval, {IFTRAIN_FAMILY}]` (or "
        f"`[{IFTRAIN_FAMILY}]`)"
    )


def check_constraint_families(
    families: str | Iterable[str], name: str = "constraint_families", for_training: bool = True
) -> tuple[str, ...]:
    r"""
    Validates a choice of constraint families and returns it as a tuple, each family once, in the order given. Every
    config that draws training data (the rewriter of `generate`, `train-policy` and `train-instructor`) checks its
    `constraint_families` here, before any query.

    Args:
        families (`str` or `Iterable[str]`):
            One family name or several, from [`CONSTRAINT_FAMILIES`].
        name (`str`, *optional*, defaults to `"constraint_families"`):
            The field the value came from, named in the error.
        for_training (`bool`, *optional*, defaults to `True`):
            Whether the constraints become training data: then a test family ([`TEST_CONSTRAINT_FAMILIES`], IFBench's
            benchmark constraints) is refused.

    Raises:
        `ValueError`: the value is empty, names an unknown family, or (with `for_training`) a test family; the message
            names `name`, why, and the valid values.
    """
    values = [families] if isinstance(families, str) else families
    try:
        values = list(values)
    except TypeError:
        values = None
    valid = TRAINING_CONSTRAINT_FAMILIES if for_training else CONSTRAINT_FAMILIES
    if not values or not all(isinstance(value, str) for value in values):
        raise ValueError(
            f"`{name}` must be a non-empty list of constraint families from {list(valid)}, got {families!r}; e.g. "
            f"`{name}: [ifeval]`."
        )
    unknown = [value for value in values if value not in CONSTRAINT_FAMILIES]
    if unknown:
        raise ValueError(
            f"`{name}` has unknown constraint famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; valid values: "
            f"{', '.join(valid)}."
        )
    test_families = [value for value in values if value in TEST_CONSTRAINT_FAMILIES]
    if for_training and test_families:
        raise ValueError(
            f"`{name}` names `{test_families[0]}`, IFBench's test constraints: they are the out-of-distribution "
            "benchmark that `evaluate` reports, and training data drawn from them contaminates it (IFBench keeps them "
            f"apart from its training constraints for that reason). {training_families_fix()}; valid values: "
            f"{', '.join(valid)}."
        )
    return tuple(dict.fromkeys(values))
