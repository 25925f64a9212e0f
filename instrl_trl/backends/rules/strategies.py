"""
The rules engine's strategies: one function per way of applying an operation offline, `(request, rng) -> Rewrite`.
[`RULES`] is the one list of them; a new strategy is a function here and an entry there.
"""

import random
from collections.abc import Callable

from ...constraints import DEFAULT_CONSTRAINT_FAMILIES, sample_constraint
from ..base import Rewrite, RewriteRequest
from .lexicon import BREADTH_TEMPLATES, DEPTH_CLAUSES, GENERAL_TERMS, INPUT_BLOCKS, REASONING_CLAUSES
from .options import rules_options
from .reading import find_general_term, input_kind, is_inquiry_instruction, main_topic, read_features


# A task takes one verifiable constraint in this world; a second adds nothing
MAX_CONSTRAINTS = 1
LEAKED_TEMPLATE_MARKER = "#Created Prompt#:"


RuleFunction = Callable[[RewriteRequest, random.Random], Rewrite]


def _unchanged(request: RewriteRequest) -> Rewrite:
    return Rewrite(request.instruction, request.constraints)


def _append(request: RewriteRequest, text: str, separator: str = " ") -> str:
    return f"{request.instruction.rstrip()}{separator}{text}"


def add_constraints(
    request: RewriteRequest, rng: random.Random, families: tuple[str, ...] = DEFAULT_CONSTRAINT_FAMILIES
) -> Rewrite:
    """
    On a task (not an inquiry) without a constraint yet, appends a verifiable constraint of `families` (at most
    [`MAX_CONSTRAINTS`], each fitting the ones already there).
    """
    if len(request.constraints) >= MAX_CONSTRAINTS or is_inquiry_instruction(request.instruction):
        return _unchanged(request)
    constraint = sample_constraint(request.constraints, rng, families=families)
    if constraint is None:
        return _unchanged(request)
    return Rewrite(_append(request, constraint.description()), (*request.constraints, constraint))


def deepening(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """On an inquiry (see [`is_inquiry_instruction`]) not deepened yet, appends a depth clause."""
    features = read_features(request.instruction)
    if not features.inquiry or features.deepened:
        return _unchanged(request)
    return Rewrite(_append(request, rng.choice(DEPTH_CLAUSES)), request.constraints)


def concretizing(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Replaces the first general term (for example "a city") with a specific one (for example "Lisbon")."""
    match = find_general_term(request.instruction)
    if match is None:
        return _unchanged(request)
    replacement = rng.choice(GENERAL_TERMS[match.group(0).lower()])
    if match.group(0)[0].isupper():
        replacement = replacement[0].upper() + replacement[1:]
    instruction = request.instruction[: match.start()] + replacement + request.instruction[match.end() :]
    return Rewrite(instruction, request.constraints)


def increase_reasoning_steps(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """On a request that calls for reasoning (see [`is_reasoning_instruction`]), asks for explicit steps, once."""
    features = read_features(request.instruction)
    if not features.reasoning or features.reasoning_added:
        return _unchanged(request)
    return Rewrite(_append(request, rng.choice(REASONING_CLAUSES)), request.constraints)


def complicate_input(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """
    On a request that works on material (see [`has_material`]) without an input yet, appends a long input block (code,
    a table or JSON, or a passage) that fits its cues.
    """
    features = read_features(request.instruction)
    if not features.material or features.input_added:
        return _unchanged(request)
    block = rng.choice(INPUT_BLOCKS[input_kind(request.instruction)])
    return Rewrite(_append(request, block, separator="\n\n"), request.constraints)


def breadth(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """
    Writes a new, rarer instruction on the same topic (from [`BREADTH_TEMPLATES`], which differ in what can be added
    next). On an instruction that was already evolved it imitates a known LLM failure, leaking the prompt's
    "#Created Prompt#:" marker, which the elimination rules catch.
    """
    new_instruction = rng.choice(BREADTH_TEMPLATES).format(topic=main_topic(request.instruction))
    if request.history:
        return Rewrite(f"{LEAKED_TEMPLATE_MARKER}\n{new_instruction}", request.constraints)
    return Rewrite(new_instruction, ())


def append_clause(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Generic strategy for user operations: appends one of the operation's rules `texts`, unless one is there."""
    texts = rules_options(request.operation).texts
    if any(text in request.instruction for text in texts):
        return _unchanged(request)
    return Rewrite(_append(request, rng.choice(texts)), request.constraints)


RULES: dict[str, RuleFunction] = {
    "add_constraints": add_constraints,
    "deepening": deepening,
    "concretizing": concretizing,
    "increase_reasoning_steps": increase_reasoning_steps,
    "complicate_input": complicate_input,
    "breadth": breadth,
    "append_clause": append_clause,
}


def rewrite_rng(request: RewriteRequest) -> random.Random:
    """The rng of one rewrite, seeded from a stable string (never `hash()`, which is salted per process)."""
    return random.Random(f"{request.seed}:{request.operation.name}:{len(request.history)}:{request.instruction}")
