"""
The offline, deterministic rules engine: a rewriter, a reviewer and an expert that need no model.

It is the default backend and the tests' fixture, and it is a *simulator*: a small world with plain rules in which
the choice of operation matters, not a model of any LLM. Which operation adds information depends on the
instruction's content, read through surface features that exist in any instruction ([`read_features`]), so a policy
that reads the instruction can learn rules that carry over to instructions it has never seen, and no fixed sequence
of operations suits every instruction.

The rules, all of them:

- `add_constraints`: on a task (not an inquiry) that carries no constraint yet, appends a verifiable constraint.
- `deepening`: on an inquiry (a question, or "explain/describe/compare...") not deepened yet, appends a depth clause.
- `concretizing`: on an instruction naming a general term ("a city", "people"), replaces the first one with a
  specific one.
- `increase_reasoning_steps`: on a request that calls for reasoning (calculate, estimate, plan, decide, ...) without
  a reasoning clause yet, asks for explicit steps.
- `complicate_input`: on a request that works on material (code, data, a passage: summarize, translate, debug, ...)
  without an input yet, appends a long input block.
- `breadth`: as the first operation, writes a new instruction on the same topic from templates that differ in what
  can be added next; on an evolved instruction it leaks the prompt's marker and is eliminated.
- user operations (`append_clause`): appends one of the operation's texts unless one is there.

Otherwise the rewrite comes back unchanged. And for every operation: an instruction over `length_limit` (110)
words gets a refusal (eliminated: the episode ends; an input block is long, so it is best added last); a share
`slip_rate` (0.1) of rewrites comes back unchanged, drawn from the rewrite's seeded rng (a later retry may succeed).
The reviewer sees an information gain when a rewrite adds at least two new content words. An unchanged rewrite costs
its queries and adds nothing: the waste a policy learns to avoid. Everything is seeded by the run seed, the seed
instruction, the operation and the step, so a rerun is identical.

Modules: `lexicon` (word lists and text banks), `reading` (what the engine sees in an instruction), `options` (an
operation's rules settings), `strategies` (one function per way of applying an operation, listed in [`RULES`]),
`roles` (the rewriter, reviewer and expert).
"""

from .lexicon import (
    BREADTH_TEMPLATES,
    DEPTH_CLAUSES,
    GENERAL_PATTERN,
    GENERAL_TERMS,
    INPUT_BLOCK_OPENING,
    INPUT_BLOCKS,
    INPUT_CUES,
    INQUIRY_OPENERS,
    INSTRUCTION_VERBS,
    MATERIAL_CUES,
    REASONING_CLAUSES,
    REASONING_CUES,
)
from .options import RULES_OPTIONS_KEY, RulesOptions, operation_label, rules_options
from .reading import (
    InstructionFeatures,
    count_words,
    find_general_term,
    has_material,
    input_kind,
    is_inquiry_instruction,
    is_reasoning_instruction,
    main_topic,
    read_features,
)
from .roles import LENGTH_LIMIT, REFUSAL, SLIP_RATE, RulesExpert, RulesReviewer, RulesRewriter
from .strategies import LEAKED_TEMPLATE_MARKER, MAX_CONSTRAINTS, RULES, RuleFunction, rewrite_rng


__all__ = [
    "BREADTH_TEMPLATES",
    "DEPTH_CLAUSES",
    "GENERAL_PATTERN",
    "GENERAL_TERMS",
    "INPUT_BLOCKS",
    "INPUT_BLOCK_OPENING",
    "INPUT_CUES",
    "INQUIRY_OPENERS",
    "INSTRUCTION_VERBS",
    "LEAKED_TEMPLATE_MARKER",
    "LENGTH_LIMIT",
    "MATERIAL_CUES",
    "MAX_CONSTRAINTS",
    "REASONING_CLAUSES",
    "REASONING_CUES",
    "REFUSAL",
    "RULES",
    "RULES_OPTIONS_KEY",
    "SLIP_RATE",
    "InstructionFeatures",
    "RuleFunction",
    "RulesExpert",
    "RulesOptions",
    "RulesReviewer",
    "RulesRewriter",
    "count_words",
    "find_general_term",
    "has_material",
    "input_kind",
    "is_inquiry_instruction",
    "is_reasoning_instruction",
    "main_topic",
    "operation_label",
    "read_features",
    "rewrite_rng",
    "rules_options",
]
