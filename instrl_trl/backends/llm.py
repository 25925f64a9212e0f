"""
The three roles on top of any [`TextGenerator`]: each builds the prompts of a batch, sends them in one `generate`
call and parses the answers. Wrap the generator in a [`CachedGenerator`] to pay for each prompt once.

What the roles read off the model lives beside them: the rewrite's cleanups in `cleaning.py`, the verdicts and their
probabilities in `verdicts.py`, what a judge did over many reviews in `review_statistics.py`.
"""

import logging
import random
import re
import threading
from collections import Counter
from dataclasses import replace
from importlib import resources

from ..constraints import (
    DEFAULT_CONSTRAINT_FAMILIES,
    Constraint,
    check_constraint_families,
    sample_constraint,
)
from .base import (
    VERDICT_MODES,
    Answer,
    Expert,
    Generation,
    Prompt,
    Review,
    Reviewer,
    Rewrite,
    Rewriter,
    RewriteRequest,
    TextGenerator,
    prompt_messages,
)
from .cleaning import clean_rewrite
from .review_statistics import MIN_REVIEWS_FOR_SPREAD, ReviewStatistics
from .verdicts import VERDICTS, parse_verdict


# Plain `logging`, not `accelerate.logging.get_logger`: the latter raises unless an accelerate state exists, and the
# roles are also used outside any launcher (generation stage, notebooks).
logger = logging.getLogger(__name__)

REVIEWER_PLACEHOLDERS = ("{original}", "{rewritten}")
_PLACEHOLDER_PATTERN = re.compile(r"\{(original|rewritten)\}")
# Enough for "Not Equal" with quotes, bold or a period around it; a reviewer must not inherit a generator's 256
REVIEWER_MAX_TOKENS = 8
REVIEWER_SYSTEM_PROMPT = (
    "You compare two prompts written for an AI assistant. You never answer them. Reply with exactly one of "
    '"Equal" or "Not Equal".'
)
REWRITER_SYSTEM_PROMPT = (
    "You rewrite prompts for an AI assistant as you are asked. You never answer or carry out the prompt. Reply with "
    "the rewritten prompt only: no title, no label, no quotes, no explanation."
)
REPLY_ONLY = "Reply with the rewritten prompt only."
CONSTRAINT_OPERATIONS = ("add_constraints",)
MISSING_CONSTRAINT_ACTIONS = ("append", "eliminate")
# The label a completion-style template ends with, which a chat model would echo back
_TRAILING_LABEL = re.compile(
    r"\n[ \t]*#?[ \t]*(?:rewritten|created|new)[ \t]+prompt[ \t]*#?[ \t]*:?[ \t]*$", re.IGNORECASE
)


def load_reviewer_template() -> str:
    """Returns the packaged reviewer prompt `templates/reviewer.txt` (placeholders `{original}`, `{rewritten}`)."""
    return resources.files(__package__).joinpath("templates", "reviewer.txt").read_text(encoding="utf-8")


def _generate(
    generator: TextGenerator, prompts: list[str], generation_kwargs: dict, seeds: list[int] | None = None
) -> list[Generation]:
    if not prompts:
        return []
    generations = generator.generate(prompts, seeds=seeds, **generation_kwargs)
    if len(generations) != len(prompts):
        raise RuntimeError(
            f"The {generator.backend!r} generator returned {len(generations)} generations for {len(prompts)} "
            "prompts; a `TextGenerator` must return one per prompt, in order."
        )
    return generations


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[\"'\u201c\u201d`*]", "", text).lower().split())


def states(text: str, constraint: Constraint) -> bool:
    """Whether `text` states `constraint` in lm-eval's words (case, spacing and quotes aside)."""
    return _normalised(constraint.description()) in _normalised(text)


class LLMRewriter(Rewriter):
    r"""
    Rewriter that sends each operation's prompt ([`Operation.render_prompt`]) to an LLM as a chat: a system message
    that asks for the rewritten prompt only, then the operation's prompt as the user's message (its closing
    `#Rewritten Prompt#:` label, written for plain completion, replaced by "Reply with the rewritten prompt only.").

    The answer is cleaned ([`clean_rewrite`]: echoed labels and lines of the prompt, preambles, quotes, closing
    commentary, repeated sentences, an unfinished last sentence when the generation stopped at its length limit),
    each cut counted in `cleanup_counts`, and becomes the new instruction. A failed query gives an empty
    instruction, which the environment's elimination rules drop as `"empty"`. Each request's `seed` is its sampling
    seed.

    Verifiable constraints come from any LLM: for an operation in `constraint_operations`, a constraint that
    conflicts with none the instruction carries is drawn ([`sample_constraint`], seeded by the request's seed), and
    the model is given its exact words to weave in. When the rewrite does not state it, it is appended verbatim, or
    the rewrite is eliminated as `"constraint_missing"` (`missing_constraint`). Constraints the instruction already
    carried and the rewrite dropped are appended again. What happened is counted in `constraint_counts` (`stated`,
    `appended`, `eliminated`, `none_left`, `restated`).

    Args:
        generator ([`TextGenerator`]):
            The model that rewrites.
        generation_kwargs (`dict` or `None`, *optional*, defaults to `None`):
            Passed to `generator.generate` with every batch; checked against the backend's settings here.
        system_prompt (`str` or `None`, *optional*, defaults to `REWRITER_SYSTEM_PROMPT`):
            The system message; `None` sends the operation's prompt alone, as one user message, unchanged.
        constraint_operations (`tuple[str, ...]`, *optional*, defaults to `("add_constraints",)`):
            Operations that add a verifiable constraint.
        missing_constraint (`str`, *optional*, defaults to `"append"`):
            What to do when the rewrite does not state the constraint it was given: `"append"` it verbatim, or
            `"eliminate"` the rewrite.
        constraint_families (`tuple[str, ...]`, *optional*, defaults to `("ifeval",)`):
            Which families of verifiable constraints are drawn ([`sample_constraint`]): training families only;
            `ifbench`, IFBench's test constraints, is refused ([`check_constraint_families`]).
    """

    def __init__(
        self,
        generator: TextGenerator,
        generation_kwargs: dict | None = None,
        system_prompt: str | None = REWRITER_SYSTEM_PROMPT,
        constraint_operations: tuple[str, ...] | list[str] = CONSTRAINT_OPERATIONS,
        missing_constraint: str = "append",
        constraint_families: tuple[str, ...] | list[str] = DEFAULT_CONSTRAINT_FAMILIES,
    ):
        if missing_constraint not in MISSING_CONSTRAINT_ACTIONS:
            raise ValueError(
                f"`missing_constraint` is {missing_constraint!r}; valid values: "
                f"{', '.join(MISSING_CONSTRAINT_ACTIONS)}."
            )
        self.generator = generator
        self.generation_kwargs = dict(generation_kwargs or {})
        generator.check_generation_kwargs(self.generation_kwargs, "rewriter.generation_kwargs")
        self.system_prompt = system_prompt
        self.constraint_operations = tuple(constraint_operations)
        self.missing_constraint = missing_constraint
        self.constraint_families = check_constraint_families(constraint_families, "rewriter.constraint_families")
        self.cleanup_counts: Counter[str] = Counter()
        self.constraint_counts: Counter[str] = Counter()
        # The generation stage calls a role from many threads at once; the counts are updated under this lock
        self._counts_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    def build_prompt(self, request: RewriteRequest, constraint: Constraint | None = None) -> Prompt:
        """The chat sent for `request`, asking to add `constraint` in its exact words when given."""
        text = request.operation.render_prompt(request.instruction)
        if self.system_prompt is None:
            return text
        text = _TRAILING_LABEL.sub("", text.rstrip()).rstrip()
        if constraint is not None:
            text += (
                "\n\nThe requirement to add is the following sentence. Include it word for word in the rewritten "
                f'prompt: "{constraint.description()}"'
            )
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": f"{text}\n\n{REPLY_ONLY}"},
        ]

    def _new_constraint(self, request: RewriteRequest) -> Constraint | None:
        if request.operation.name not in self.constraint_operations:
            return None
        constraint = sample_constraint(
            request.constraints, random.Random(request.seed), families=self.constraint_families
        )
        if constraint is None:
            self.constraint_counts["none_left"] += 1
        return constraint

    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]:
        with self._counts_lock:
            new_constraints = [self._new_constraint(request) for request in requests]
        prompts = [self.build_prompt(request, c) for request, c in zip(requests, new_constraints, strict=True)]
        seeds = [request.seed for request in requests]
        generations = _generate(self.generator, prompts, self.generation_kwargs, seeds)
        with self._counts_lock:
            return [
                self._finish(request, constraint, prompt, generation)
                for request, constraint, prompt, generation in zip(
                    requests, new_constraints, prompts, generations, strict=True
                )
            ]

    def _finish(
        self, request: RewriteRequest, constraint: Constraint | None, prompt: Prompt, generation: Generation
    ) -> Rewrite:
        shown = "\n\n".join(message["content"] for message in prompt_messages(prompt))
        keep = [request.instruction] + ([constraint.description()] if constraint is not None else [])
        truncated = generation.finish_reason == "length"
        text, cleanups = clean_rewrite(generation.text or "", prompt=shown, keep=keep, truncated=truncated)
        self.cleanup_counts.update(cleanups)
        if not text:  # a failed query: the elimination rules drop it as "empty"
            return Rewrite("", request.constraints, generation.usage, cleanups)
        for carried in request.constraints:
            if not states(text, carried):
                text = f"{text.rstrip()} {carried.description()}"
                self.constraint_counts["restated"] += 1
        if constraint is None:
            return Rewrite(text, request.constraints, generation.usage, cleanups)
        if states(text, constraint):
            self.constraint_counts["stated"] += 1
        elif self.missing_constraint == "eliminate":
            self.constraint_counts["eliminated"] += 1
            return Rewrite(text, request.constraints, generation.usage, cleanups, rejection="constraint_missing")
        else:
            self.constraint_counts["appended"] += 1
            text = f"{text.rstrip()} {constraint.description()}"
        return Rewrite(text, (*request.constraints, constraint), generation.usage, cleanups)


class LLMReviewer(Reviewer):
    r"""
    Reviewer that asks an LLM whether a rewrite adds information, with Evol-Instruct's equality check
    ([WizardLM](https://huggingface.co/papers/2304.12244)): two prompts are "Equal" when they have the same constraints
    and requirements and the same depth and breadth of inquiry. "Not Equal" is an information gain.

    Every verdict comes with P(information gain), obtained as `verdict_mode` says ([`VERDICT_MODES`]): `likelihood`
    (a local model scores "Not Equal" and "Equal" as whole answers, one forward pass), `logprobs`, `choice` or
    `systemone` (what an endpoint's server offers), or `parse` (free generation parsed strictly, the last resort: P
    is 0 or 1, and an answer that is neither verdict is a failed query). The gain is P at or above `threshold`. A
    failed query counts as no gain and is reported (`usage.failed`), with a warning.

    A judge that always answers the same is still visible: `review_statistics` ([`ReviewStatistics`]) sums the
    failed verdicts, the spread of P and, when `reference` is given (the rules reviewer, by [`build_role`]), the
    verdicts that agree with it on the same pairs; the trainer logs them per logging window and writes them to
    `queries.json`. A warning is logged once when, over a window of at least `MIN_REVIEWS_FOR_SPREAD` (20) scored
    reviews, the standard deviation of P is below `MIN_SPREAD` (0.05): the judge does not tell rewrites apart.

    Args:
        generator ([`TextGenerator`]):
            The model that judges.
        generation_kwargs (`dict` or `None`, *optional*, defaults to `None`):
            For `verdict_mode: parse`: passed to `generator.generate` with every batch, on top of
            `{"temperature": 0.0}` (a judge should not sample) and a length limit of 8 tokens under the backend's name
            for it (`generator.max_tokens_key`), since a verdict is a few tokens. Checked against the backend here.
        prompt_template (`str` or `None`, *optional*, defaults to `None`):
            The judging prompt, with the placeholders `{original}` and `{rewritten}`. `None` uses the packaged
            `templates/reviewer.txt`.
        verdict_mode (`str` or `None`, *optional*, defaults to `None`):
            One of [`VERDICT_MODES`]; `None` takes the first the generator offers (`likelihood` for transformers, the
            server's for an endpoint), else `parse`. A mode the generator does not offer raises here.
        threshold (`float`, *optional*, defaults to `0.5`):
            The P(gain) from which a rewrite counts as adding information.
        system_prompt (`str` or `None`, *optional*, defaults to `REVIEWER_SYSTEM_PROMPT`):
            The system message before the judging prompt; `None` sends the judging prompt alone.
        reference ([`Reviewer`] or `None`, *optional*, defaults to `None`):
            A reviewer asked on the same pairs (for free, e.g. the rules reviewer) to measure agreement.
    """

    def __init__(
        self,
        generator: TextGenerator,
        generation_kwargs: dict | None = None,
        prompt_template: str | None = None,
        verdict_mode: str | None = None,
        threshold: float = 0.5,
        system_prompt: str | None = REVIEWER_SYSTEM_PROMPT,
        reference: Reviewer | None = None,
    ):
        prompt_template = load_reviewer_template() if prompt_template is None else prompt_template
        missing = [placeholder for placeholder in REVIEWER_PLACEHOLDERS if placeholder not in prompt_template]
        if missing:
            raise ValueError(
                f"`prompt_template` lacks the placeholders {', '.join(missing)}; write them where the original and "
                "the rewritten instruction go."
            )
        offered = (*generator.choice_modes, "parse")
        verdict_mode = offered[0] if verdict_mode is None else verdict_mode
        if verdict_mode not in VERDICT_MODES:
            raise ValueError(f"`reviewer.verdict_mode` is {verdict_mode!r}; valid modes: {', '.join(VERDICT_MODES)}.")
        if verdict_mode not in offered:
            raise ValueError(
                f"`reviewer.verdict_mode` is {verdict_mode!r}, which the {generator.backend} backend does not offer "
                f"here; it offers {', '.join(offered)} (an endpoint's modes depend on its `server`)."
            )
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"`reviewer.threshold` is {threshold}; give a probability between 0 and 1.")
        self.generator = generator
        defaults = {"temperature": 0.0}
        if generator.max_tokens_key is not None:
            defaults[generator.max_tokens_key] = REVIEWER_MAX_TOKENS
        self.generation_kwargs = {**defaults, **(generation_kwargs or {})}
        generator.check_generation_kwargs(self.generation_kwargs, "reviewer.generation_kwargs")
        self.prompt_template = prompt_template
        self.verdict_mode = verdict_mode
        self.threshold = threshold
        self.system_prompt = system_prompt
        self.reference = reference
        self.review_statistics = ReviewStatistics()
        # The reviews since the spread was last checked
        self._window = ReviewStatistics()
        self._warned_spread = False
        self._statistics_lock = threading.Lock()  # reviews may come from many threads (the generation stage)

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    def render_prompt(self, original: str, rewritten: str) -> str:
        """Returns the judging prompt. One pass, so an instruction that contains `{rewritten}` stays as written."""
        values = {"original": original, "rewritten": rewritten}
        return _PLACEHOLDER_PATTERN.sub(lambda match: values[match.group(1)], self.prompt_template)

    def build_prompt(self, original: str, rewritten: str) -> Prompt:
        """The chat sent for one pair: the system message, then the judging prompt."""
        text = self.render_prompt(original, rewritten)
        if self.system_prompt is None:
            return text
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": text}]

    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        if len(originals) != len(rewrites):
            raise ValueError(f"Got {len(originals)} `originals` but {len(rewrites)} `rewrites`; pass one per item.")
        if not originals:
            return []
        prompts = [self.build_prompt(o, r) for o, r in zip(originals, rewrites, strict=True)]
        if self.verdict_mode == "parse":
            reviews = [
                self._parsed(generation) for generation in _generate(self.generator, prompts, self.generation_kwargs)
            ]
        else:
            scores = self.generator.score_choices(prompts, VERDICTS, self.verdict_mode)
            if len(scores) != len(prompts):
                raise RuntimeError(f"The {self.generator.backend!r} generator scored {len(scores)} of {len(prompts)}.")
            reviews = []
            for score in scores:
                if score.probabilities is None:
                    logger.warning("A reviewer query failed; the rewrite counts as adding no information.")
                    reviews.append(Review(False, score.text or "", replace(score.usage, failed=True)))
                    continue
                probability = score.probabilities[0]
                gain = probability >= self.threshold
                reviews.append(Review(gain, VERDICTS[0] if gain else VERDICTS[1], score.usage, probability))
        references = self.reference.review(originals, rewrites) if self.reference is not None else None
        with self._statistics_lock:
            self._record(reviews, references)
        return reviews

    def _parsed(self, generation: Generation) -> Review:
        verdict = parse_verdict(generation.text)
        if verdict is None:
            if generation.text is None:
                logger.warning("A reviewer query failed; the rewrite counts as adding no information.")
            else:
                logger.warning(
                    "The reviewer answered %r, which is neither 'Equal' nor 'Not Equal'; the rewrite counts as "
                    "adding no information and the query as failed.",
                    generation.text[:80],
                )
            return Review(False, generation.text or "", replace(generation.usage, failed=True))
        return Review(verdict, generation.text, generation.usage, float(verdict))

    def _record(self, reviews: list[Review], references: list[Review] | None) -> None:
        self.review_statistics.add(reviews, references)
        self._window.add(reviews, references)
        if self._window.scored < MIN_REVIEWS_FOR_SPREAD:
            return
        if not self._warned_spread and self._window.hardly_varies():
            self._warned_spread = True
            logger.warning(
                "The reviewer's P(information gain) hardly varies (%s): it does not discriminate between rewrites, "
                "and its verdicts are a constant reward. Use a larger judge, or the rules reviewer.",
                self._window.describe(),
            )
        self._window = ReviewStatistics()

    def statistics(self) -> dict:
        """
        What the judge did so far ([`ReviewStatistics.summary`]): `reviews`, `failed` (no verdict), `scored`, `gains`,
        `failed_share`, the mean and standard deviation of P(gain) over scored reviews, and `agreement` with
        `reference` (`None` without one).
        """
        return self.review_statistics.summary()


class LLMExpert(Expert):
    r"""
    Expert that answers instructions with an LLM.

    The n-th time this expert is asked the same instruction (counting from 0), it asks with sampling seed n: a
    verification retry gets a new sample when the generator samples, instead of the cached first answer, and a rerun
    asks the same sequence of seeds, so it is answered from the cache. Under greedy decoding the seed changes nothing
    and a retry is a cache hit.

    Args:
        generator ([`TextGenerator`]):
            The model that answers.
        generation_kwargs (`dict` or `None`, *optional*, defaults to `None`):
            Passed to `generator.generate` with every batch; checked against the backend's settings here.
        system_prompt (`str` or `None`, *optional*, defaults to `None`):
            Text put before every instruction, separated by a blank line. A [`TextGenerator`] takes one prompt per
            item, so this is part of the prompt (and of its cache key), not a separate system message.
    """

    def __init__(
        self,
        generator: TextGenerator,
        generation_kwargs: dict | None = None,
        system_prompt: str | None = None,
    ):
        self.generator = generator
        self.generation_kwargs = dict(generation_kwargs or {})
        generator.check_generation_kwargs(self.generation_kwargs, "expert.generation_kwargs")
        self.system_prompt = system_prompt
        self._times_asked: Counter[str] = Counter()
        self._times_asked_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    def respond(self, instructions: list[str]) -> list[Answer]:
        attempts = []
        with self._times_asked_lock:
            for instruction in instructions:
                attempts.append(self._times_asked[instruction])
                self._times_asked[instruction] += 1
        return self.respond_attempts(instructions, attempts)

    def respond_attempts(self, instructions: list[str], attempts: list[int]) -> list[Answer]:
        """Answers `instructions`, asking instruction `i` with sampling seed `attempts[i]` (see the class)."""
        prompts = [
            f"{self.system_prompt}\n\n{instruction}" if self.system_prompt else instruction
            for instruction in instructions
        ]
        generations = _generate(self.generator, prompts, self.generation_kwargs, list(attempts))
        return [Answer((generation.text or "").strip(), generation.usage) for generation in generations]
