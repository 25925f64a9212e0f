"""instrl-trl: learn with PPO which textual operations make better instructions (TeaMs-RL on TRL)."""

import importlib
from typing import TYPE_CHECKING


__version__ = "0.1.0.dev0"

# Public name -> module. Imported on first use (PEP 562), so that `instrl-trl --help` and light imports such as
# `instrl_trl.operations` do not pay for torch, transformers and TRL.
_LAZY_IMPORTS = {
    "QueryAccounting": "backends.accounting",
    "Expert": "backends.base",
    "Review": "backends.base",
    "Reviewer": "backends.base",
    "Rewrite": "backends.base",
    "RewriteRequest": "backends.base",
    "Rewriter": "backends.base",
    "RulesExpert": "backends.rules",
    "RulesReviewer": "backends.rules",
    "RulesRewriter": "backends.rules",
    "Constraint": "constraints",
    "STOP_ACTION": "operations",
    "InstructionEnv": "environment",
    "format_state": "environment",
    "Operation": "operations",
    "OperationLibrary": "operations",
    "build_operation_library": "operations",
    "load_operations": "operations",
    "build_policy": "policy",
    "REWARD_FUNCS": "rewards",
    "get_reward_funcs": "rewards",
    "InstructionGenerationConfig": "trainer",
    "InstructionGenerationTrainer": "trainer",
    "InstructorConfig": "trainer.instructor",
    "InstructorTrainer": "trainer.instructor",
}

__all__ = [
    "REWARD_FUNCS",
    "STOP_ACTION",
    "Constraint",
    "Expert",
    "InstructionEnv",
    "InstructionGenerationConfig",
    "InstructionGenerationTrainer",
    "InstructorConfig",
    "InstructorTrainer",
    "Operation",
    "OperationLibrary",
    "QueryAccounting",
    "Review",
    "Reviewer",
    "Rewrite",
    "RewriteRequest",
    "Rewriter",
    "RulesExpert",
    "RulesReviewer",
    "RulesRewriter",
    "build_operation_library",
    "build_policy",
    "format_state",
    "get_reward_funcs",
    "load_operations",
]


def __getattr__(name: str):
    if name not in _LAZY_IMPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY_IMPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from .backends.accounting import QueryAccounting
    from .backends.base import Expert, Review, Reviewer, Rewrite, Rewriter, RewriteRequest
    from .backends.rules import RulesExpert, RulesReviewer, RulesRewriter
    from .constraints import Constraint
    from .environment import InstructionEnv, format_state
    from .operations import STOP_ACTION, Operation, OperationLibrary, build_operation_library, load_operations
    from .policy import build_policy
    from .rewards import REWARD_FUNCS, get_reward_funcs
    from .trainer import InstructionGenerationConfig, InstructionGenerationTrainer
    from .trainer.instructor import InstructorConfig, InstructorTrainer
