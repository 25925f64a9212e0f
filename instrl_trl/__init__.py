"""instrl-trl: learn with PPO which textual operations make better instructions (TeaMs-RL on TRL)."""

__version__ = "0.1.0.dev0"

from .backends.accounting import QueryAccounting
from .backends.base import Expert, Review, Reviewer, Rewrite, Rewriter, RewriteRequest
from .backends.rules import RulesExpert, RulesReviewer, RulesRewriter
from .constraints import Constraint
from .environment import STOP_ACTION, InstructionEnv, format_state
from .operations import Operation, OperationLibrary, build_operation_library, load_operations
from .policy import build_policy
from .rewards import REWARD_FUNCS, get_reward_funcs
from .trainer import InstructionGenerationConfig, InstructionGenerationTrainer


__all__ = [
    "REWARD_FUNCS",
    "STOP_ACTION",
    "Constraint",
    "Expert",
    "InstructionEnv",
    "InstructionGenerationConfig",
    "InstructionGenerationTrainer",
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
