"""
The offline, deterministic rules engine: a rewriter, a reviewer and an expert that need no model.

It is the default backend and the tests' fixture. Its rules make the choice of operation matter: whether an
operation adds information depends on the instruction and on what the episode already did, as with an LLM rewriter
(a third constraint or a second input block adds nothing, breadth after evolving leaks the prompt template, a long
prompt gets a refusal). A uniform-random choice of operations (Evol-Instruct) therefore wastes many queries, and a
policy that reads the state can waste almost none.
"""

import random
import re
from collections.abc import Callable, Iterable, Mapping

from ..constraints import sample_constraint
from ..elimination import content_words
from ..operations.operation import Operation
from .base import Answer, Expert, Review, Reviewer, Rewrite, Rewriter, RewriteRequest
from .rules_lexicon import (
    _GENERAL_PATTERN,
    _INPUT_CUES,
    _INSTRUCTION_VERBS,
    BREADTH_TEMPLATES,
    DEPTH_CLAUSES,
    GENERAL_TERMS,
    INPUT_BLOCKS,
    INQUIRY_CUES,
    REASONING_CLAUSES,
    REASONING_CUES,
)


MAX_CONSTRAINTS = 2
LENGTH_LIMIT = 110
REFUSAL = "Sorry, I cannot make this prompt more complex without making it unreasonable to answer."
LEAKED_TEMPLATE_MARKER = "#Created Prompt#:"


RuleFunction = Callable[[RewriteRequest, random.Random], Rewrite]


def count_words(text: str) -> int:
    return len(text.split())


def is_reasoning_instruction(text: str) -> bool:
    """Returns whether `text` asks for reasoning (calculation, comparison, planning, explanation, ...)."""
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(cue)}\b", lowered) for cue in REASONING_CUES)


def is_inquiry_instruction(text: str) -> bool:
    """Returns whether `text` asks about an issue (a question, or a request to describe, explain, compare, ...)."""
    lowered = text.lower()
    # only the first sentence counts as the question: appended constraints may quote one ("Any other questions?")
    first_sentence = re.split(r"(?<=[.?!])\s", lowered.strip(), maxsplit=1)[0]
    return first_sentence.endswith("?") or any(re.search(rf"\b{re.escape(cue)}\b", lowered) for cue in INQUIRY_CUES)


def find_general_term(text: str) -> re.Match | None:
    """Returns the first general term of [`GENERAL_TERMS`] in `text` (case-insensitive, on word boundaries)."""
    return _GENERAL_PATTERN.search(text)


def main_topic(text: str) -> str:
    """Returns the instruction's topic: the last run (up to 3 words) of content words in its first sentence."""
    first_sentence = re.split(r"(?<=[.?!])\s|\n", text.strip(), maxsplit=1)[0]
    words = re.findall(r"[A-Za-z][A-Za-z'-]*|\d+|[^\sA-Za-z\d]", first_sentence)
    runs, run = [], []
    for word in words:
        lowered = word.lower()
        if lowered.isalpha() and lowered not in _INSTRUCTION_VERBS and content_words(lowered):
            run.append(word)
        else:
            if run:
                runs.append(run)
            run = []
    if run:
        runs.append(run)
    return " ".join(runs[-1][-3:]).lower() if runs else "this subject"


def _unchanged(request: RewriteRequest) -> Rewrite:
    return Rewrite(request.instruction, request.constraints)


def _append(request: RewriteRequest, text: str, separator: str = " ") -> str:
    return f"{request.instruction.rstrip()}{separator}{text}"


def add_constraints(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Appends a verifiable constraint that fits the ones already there (at most [`MAX_CONSTRAINTS`])."""
    if len(request.constraints) >= MAX_CONSTRAINTS:
        return _unchanged(request)
    constraint = sample_constraint(request.constraints, rng)
    if constraint is None:
        return _unchanged(request)
    return Rewrite(_append(request, constraint.description()), (*request.constraints, constraint))


def deepening(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Appends a depth clause, once per episode and only on an inquiry (see [`is_inquiry_instruction`])."""
    if request.operation.name in request.history or not is_inquiry_instruction(request.instruction):
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
    """Asks for multi-step reasoning, once per episode and only on a reasoning instruction."""
    if request.operation.name in request.history or not is_reasoning_instruction(request.instruction):
        return _unchanged(request)
    return Rewrite(_append(request, rng.choice(REASONING_CLAUSES)), request.constraints)


def complicate_input(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Appends an input block (code, table, JSON or passage) chosen by topic, once per episode."""
    if request.operation.name in request.history:
        return _unchanged(request)
    words = set(re.findall(r"[a-z]+", request.instruction.lower()))
    kind = next((kind for kind, cues in _INPUT_CUES.items() if words & set(cues)), "text")
    return Rewrite(_append(request, rng.choice(INPUT_BLOCKS[kind]), separator="\n\n"), request.constraints)


def breadth(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """
    Writes a new, rarer instruction on the same topic. On an instruction that was already evolved it imitates a known
    LLM failure, leaking the prompt's "#Created Prompt#:" marker, which the elimination rules catch.
    """
    new_instruction = rng.choice(BREADTH_TEMPLATES).format(topic=main_topic(request.instruction))
    if request.history:
        return Rewrite(f"{LEAKED_TEMPLATE_MARKER}\n{new_instruction}", request.constraints)
    return Rewrite(new_instruction, ())


def append_clause(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Generic strategy for user operations: appends one of `operation.rule_texts`, once per episode."""
    if request.operation.name in request.history:
        return _unchanged(request)
    return Rewrite(_append(request, rng.choice(request.operation.rule_texts)), request.constraints)


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


class RulesRewriter(Rewriter):
    r"""
    Offline rewriter that applies each operation's `rule` strategy from [`RULES`].

    Args:
        rules (`Mapping[str, Callable]` or `None`, *optional*, defaults to `None`):
            Strategy name -> function `(request, rng) -> Rewrite`. `None` uses [`RULES`].
        length_limit (`int`, *optional*, defaults to `110`):
            Above this many words, every operation returns a refusal, as LLM rewriters do on overlong prompts.
    """

    model_name = "rules"

    def __init__(self, rules: Mapping[str, RuleFunction] | None = None, length_limit: int = LENGTH_LIMIT):
        self.rules = dict(RULES if rules is None else rules)
        self.length_limit = length_limit

    def check_operations(self, operations: Iterable[Operation] | Mapping[str, Operation]) -> None:
        """Raises a `ValueError` for an operation this engine cannot apply; call it before any query."""
        if isinstance(operations, Mapping):
            operations = operations.values()
        for operation in operations:
            if operation.rule not in self.rules:
                raise ValueError(
                    f"Operation {operation.name!r} has `rule` {operation.rule!r}, which the rules engine does not "
                    f"know. Valid rule names: {', '.join(self.rules)}. Set `rule` or use an LLM rewriter."
                )
            if self.rules[operation.rule] is append_clause and not operation.rule_texts:
                raise ValueError(
                    f"Operation {operation.name!r} uses the `append_clause` rule but its `rule_texts` is empty; give "
                    "the clauses it may append."
                )

    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]:
        self.check_operations(request.operation for request in requests)
        rewrites = []
        for request in requests:
            if count_words(request.instruction) > self.length_limit:
                rewrites.append(Rewrite(REFUSAL, request.constraints))
            else:
                rewrites.append(self.rules[request.operation.rule](request, rewrite_rng(request)))
        return rewrites


class RulesReviewer(Reviewer):
    r"""
    Offline reviewer: "Not Equal" (information gain) when the rewrite differs from the original and adds at least
    `min_new_words` content words (lowercased alphanumeric words that are not stop words and not in the original).

    Args:
        min_new_words (`int`, *optional*, defaults to `2`):
            New content words needed for an information gain.
    """

    model_name = "rules"

    def __init__(self, min_new_words: int = 2):
        self.min_new_words = min_new_words

    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        if len(originals) != len(rewrites):
            raise ValueError(f"Got {len(originals)} `originals` but {len(rewrites)} `rewrites`; pass one per item.")
        reviews = []
        for original, rewrite in zip(originals, rewrites, strict=True):
            new_words = content_words(rewrite) - content_words(original)
            gain = rewrite.strip() != original.strip() and len(new_words) >= self.min_new_words
            reviews.append(Review(information_gain=gain, verdict="Not Equal" if gain else "Equal"))
        return reviews


class RulesExpert(Expert):
    """Offline expert: a short, deterministic generic answer built from each instruction's topic."""

    model_name = "rules"

    def respond(self, instructions: list[str]) -> list[Answer]:
        responses = []
        for instruction in instructions:
            topic = main_topic(instruction)
            responses.append(
                f"Here is a short answer about {topic}. The main point is to start from what is known about {topic} "
                f"and build on it carefully. A good next step is to check the details against a reliable source."
            )
        return [Answer(text) for text in responses]
