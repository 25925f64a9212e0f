"""
The offline, deterministic rules engine: a rewriter, a reviewer and an expert that need no model.

It is the default backend and the tests' fixture. Its rules make the choice of operation matter: whether an
operation adds information depends on the instruction and on what the episode already did, as with an LLM rewriter
(a third constraint or a second input block adds nothing, breadth after evolving leaks the prompt template, a long
prompt gets a refusal). A uniform-random choice of operations (Evol-Instruct) therefore wastes many queries, and a
policy that reads the state can waste almost none.

Modules: `lexicon` (word lists and text banks), `reading` (what the engine sees in an instruction), `options` (an
operation's rules settings), `strategies` (one function per way of applying an operation, listed in [`RULES`]),
`roles` (the rewriter, reviewer and expert).
"""

from .lexicon import (
    BREADTH_TEMPLATES,
    DEPTH_CLAUSES,
    GENERAL_PATTERN,
    GENERAL_TERMS,
    INPUT_BLOCKS,
    INPUT_CUES,
    INQUIRY_CUES,
    INSTRUCTION_VERBS,
    REASONING_CLAUSES,
    REASONING_CUES,
)
from .options import RULES_OPTIONS_KEY, RulesOptions, operation_label, rules_options
from .reading import count_words, find_general_term, is_inquiry_instruction, is_reasoning_instruction, main_topic
from .roles import LENGTH_LIMIT, REFUSAL, RulesExpert, RulesReviewer, RulesRewriter
from .strategies import LEAKED_TEMPLATE_MARKER, MAX_CONSTRAINTS, RULES, RuleFunction, rewrite_rng


__all__ = [
    "BREADTH_TEMPLATES",
    "DEPTH_CLAUSES",
    "GENERAL_PATTERN",
    "GENERAL_TERMS",
    "INPUT_BLOCKS",
    "INPUT_CUES",
    "INQUIRY_CUES",
    "INSTRUCTION_VERBS",
    "LEAKED_TEMPLATE_MARKER",
    "LENGTH_LIMIT",
    "MAX_CONSTRAINTS",
    "REASONING_CLAUSES",
    "REASONING_CUES",
    "REFUSAL",
    "RULES",
    "RULES_OPTIONS_KEY",
    "RuleFunction",
    "RulesExpert",
    "RulesOptions",
    "RulesReviewer",
    "RulesRewriter",
    "count_words",
    "find_general_term",
    "is_inquiry_instruction",
    "is_reasoning_instruction",
    "main_topic",
    "operation_label",
    "rewrite_rng",
    "rules_options",
]
