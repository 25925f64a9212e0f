from .base import Expert, Review, Reviewer, Rewrite, Rewriter, RewriteRequest
from .rules import RULES, RulesExpert, RulesReviewer, RulesRewriter


__all__ = [
    "RULES",
    "Expert",
    "Review",
    "Reviewer",
    "Rewrite",
    "RewriteRequest",
    "Rewriter",
    "RulesExpert",
    "RulesReviewer",
    "RulesRewriter",
]
