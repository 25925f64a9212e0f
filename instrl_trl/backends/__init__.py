from ..models.builtin import resolve_model_name
from .accounting import QueryAccounting
from .base import (
    VERDICT_MODES,
    Answer,
    ChoiceScores,
    Expert,
    Generation,
    Review,
    Reviewer,
    Rewrite,
    Rewriter,
    RewriteRequest,
    TextGenerator,
    Usage,
)
from .cache import ResponseCache
from .cached_generator import CachedGenerator
from .cleaning import CLEANUP_REASONS, clean_rewrite
from .llm import LLMExpert, LLMReviewer, LLMRewriter
from .review_statistics import ReviewStatistics
from .roles import build_role
from .rules import RULES, RulesExpert, RulesReviewer, RulesRewriter


# `EndpointGenerator` and `TransformersGenerator` are imported from their modules
# (`instrl_trl.backends.endpoint`, `instrl_trl.backends.transformers`): they pull in heavier dependencies.
__all__ = [
    "CLEANUP_REASONS",
    "RULES",
    "VERDICT_MODES",
    "Answer",
    "CachedGenerator",
    "ChoiceScores",
    "Expert",
    "Generation",
    "LLMExpert",
    "LLMReviewer",
    "LLMRewriter",
    "QueryAccounting",
    "ResponseCache",
    "Review",
    "ReviewStatistics",
    "Reviewer",
    "Rewrite",
    "RewriteRequest",
    "Rewriter",
    "RulesExpert",
    "RulesReviewer",
    "RulesRewriter",
    "TextGenerator",
    "Usage",
    "build_role",
    "clean_rewrite",
    "resolve_model_name",
]
