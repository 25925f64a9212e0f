"""The rules engine's three roles: a rewriter that applies the strategies, a reviewer and an expert."""

import dataclasses
import functools
from collections.abc import Iterable, Mapping

from ...constraints import DEFAULT_CONSTRAINT_FAMILIES, check_constraint_families
from ...elimination import content_words
from ...operations import Operation
from ..base import Answer, Expert, Review, Reviewer, Rewrite, Rewriter, RewriteRequest, Usage
from .options import RULES_OPTIONS_KEY, operation_label, rules_options
from .reading import count_words, main_topic
from .strategies import RULES, RuleFunction, add_constraints, append_clause, rewrite_rng


LENGTH_LIMIT = 110
SLIP_RATE = 0.1
REFUSAL = "Sorry, I cannot make this prompt more complex without making it unreasonable to answer."


def word_usage(prompt: str, completion: str) -> Usage:
    """
    What a rules query "costs" in tokens: the words it reads and writes (whitespace-separated), so that token ratios
    mean something offline too. An LLM backend reports its tokenizer's counts instead.
    """
    return Usage(prompt_tokens=len(prompt.split()), completion_tokens=len(completion.split()))


class RulesRewriter(Rewriter):
    r"""
    Offline rewriter that applies each operation's strategy from [`RULES`] (see [`rules_options`] and the rules in
    the package docstring).

    Args:
        rules (`Mapping[str, Callable]` or `None`, *optional*, defaults to `None`):
            Strategy name -> function `(request, rng) -> Rewrite`. `None` uses [`RULES`].
        length_limit (`int`, *optional*, defaults to `110`):
            Above this many words, every operation returns a refusal, as LLM rewriters do on overlong prompts.
        constraint_families (`Iterable[str]`, *optional*, defaults to `("ifeval",)`):
            Constraint families `add_constraints` draws from (see [`~instrl_trl.constraints.sample_constraint`]):
            training families only; `"ifbench"`, IFBench's test constraints, is refused.
        slip_rate (`float`, *optional*, defaults to `0.1`):
            Share of rewrites that come back unchanged whatever the operation, as a real rewriter sometimes fails to
            apply one. Drawn from each rewrite's own seeded rng, so a retry of the same operation (a later step) may
            succeed and a rerun slips on the same rewrites.
    """

    model_name = "rules"

    def __init__(
        self,
        rules: Mapping[str, RuleFunction] | None = None,
        length_limit: int = LENGTH_LIMIT,
        constraint_families: Iterable[str] = DEFAULT_CONSTRAINT_FAMILIES,
        slip_rate: float = SLIP_RATE,
    ):
        if not 0.0 <= slip_rate < 1.0:
            raise ValueError(f"`rewriter.slip_rate` must be in [0, 1), got {slip_rate!r}.")
        self.slip_rate = slip_rate
        self.constraint_families = check_constraint_families(constraint_families, "rewriter.constraint_families")
        # Bound here so that every strategy keeps the `(request, rng)` form
        self.rules = {
            name: functools.partial(rule, families=self.constraint_families) if rule is add_constraints else rule
            for name, rule in (RULES if rules is None else rules).items()
        }
        self.length_limit = length_limit

    def check_operations(self, operations: Iterable[Operation] | Mapping[str, Operation]) -> None:
        """Raises a `ValueError` for an operation this engine cannot apply; call it before any query."""
        if isinstance(operations, Mapping):
            operations = operations.values()
        for operation in operations:
            options = rules_options(operation)
            if options.strategy not in self.rules:
                raise ValueError(
                    f"{operation_label(operation)}: the rules engine has no strategy {options.strategy!r}. Valid "
                    f"strategies: {', '.join(self.rules)}. Name one in the key "
                    f"`backend_options.{RULES_OPTIONS_KEY}.strategy`, or use an LLM rewriter."
                )
            if self.rules[options.strategy] is append_clause and not options.texts:
                raise ValueError(
                    f"{operation_label(operation)}: the `append_clause` strategy needs clauses to append but the key "
                    f"`backend_options.{RULES_OPTIONS_KEY}.texts` is empty; list them there."
                )

    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]:
        self.check_operations(request.operation for request in requests)
        rewrites = []
        for request in requests:
            rewrite = self._rewrite(request)
            # Tokens as an LLM rewriter would spend them: the operation's prompt in, the new instruction out
            usage = word_usage(request.operation.render_prompt(request.instruction), rewrite.instruction)
            rewrites.append(dataclasses.replace(rewrite, usage=usage))
        return rewrites

    def _rewrite(self, request: RewriteRequest) -> Rewrite:
        if count_words(request.instruction) > self.length_limit:
            return Rewrite(REFUSAL, request.constraints)
        rng = rewrite_rng(request)
        if rng.random() < self.slip_rate:
            return Rewrite(request.instruction, request.constraints)
        strategy = self.rules[rules_options(request.operation).strategy]
        return strategy(request, rng)


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
            verdict = "Not Equal" if gain else "Equal"
            # Tokens: both instructions in (the judge's own prompt text left out), the verdict out
            reviews.append(Review(gain, verdict, word_usage(f"{original} {rewrite}", verdict)))
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
        return [
            Answer(text, word_usage(instruction, text))
            for instruction, text in zip(instructions, responses, strict=True)
        ]
