from .accounting import QueryAccounting
from .base import Answer, Expert, Generation, Review, Reviewer, Rewrite, Rewriter, RewriteRequest, TextGenerator, Usage
from .cache import CachedGenerator, ResponseCache
from .llm import LLMExpert, LLMReviewer, LLMRewriter
from .models import resolve_model_name
from .roles import build_role
from .rules import RULES, RulesExpert, RulesReviewer, RulesRewriter


# `EndpointGenerator` and `TransformersGenerator` are imported from their modules
# (`instrl_trl.backends.endpoint`, `instrl_trl.backends.transformers`): they pull in heavier dependencies.
__all__ = [
    "RULES",
    "Answer",
    "CachedGenerator",
    "Expert",
    "Generation",
    "LLMExpert",
    "LLMReviewer",
    "LLMRewriter",
    "QueryAccounting",
    "ResponseCache",
    "Review",
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
    "resolve_model_name",
]
