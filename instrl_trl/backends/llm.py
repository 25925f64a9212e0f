"""
The three roles on top of any [`TextGenerator`]: each builds the prompts of a batch, sends them in one `generate`
call and parses the answers. Wrap the generator in a [`CachedGenerator`] to pay for each prompt once.
"""

import logging
import re
from collections import Counter
from dataclasses import replace
from importlib import resources

from .base import Answer, Expert, Generation, Review, Reviewer, Rewrite, Rewriter, RewriteRequest, TextGenerator


# Plain `logging`, not `accelerate.logging.get_logger`: the latter raises unless an accelerate state exists, and the
# roles are also used outside any launcher (generation stage, notebooks).
logger = logging.getLogger(__name__)

REVIEWER_PLACEHOLDERS = ("{original}", "{rewritten}")
_PLACEHOLDER_PATTERN = re.compile(r"\{(original|rewritten)\}")
# Wrappers that chat models put around a one-word answer: quotes, Markdown bold/italics, inline code
_VERDICT_WRAPPERS = "\"'`*"
# Enough for "Not Equal" with quotes, bold or a period around it; a reviewer must not inherit a generator's 256
REVIEWER_MAX_TOKENS = 8


def load_reviewer_template() -> str:
    """Returns the packaged reviewer prompt `templates/reviewer.txt` (placeholders `{original}`, `{rewritten}`)."""
    return resources.files(__package__).joinpath("templates", "reviewer.txt").read_text(encoding="utf-8")


def parse_verdict(answer: str | None) -> bool | None:
    r"""
    Parses a reviewer's answer strictly: `False` for "Equal", `True` for "Not Equal" (information gain), `None` for
    anything else.

    Surrounding whitespace, quotes, asterisks and backticks and one trailing period are ignored, and case does not
    matter; any other text (an explanation, "Yes", an empty answer) makes the answer unparseable, since guessing
    would turn a confused reviewer into a reward.

    Example:
    ```python
    >>> parse_verdict("Not Equal"), parse_verdict(" **equal.** "), parse_verdict("Equal, because both ask the same")
    (True, False, None)

    ```
    """
    if answer is None:
        return None
    text = answer.strip().strip(_VERDICT_WRAPPERS).strip()
    text = text.removesuffix(".").strip().strip(_VERDICT_WRAPPERS).strip()
    return {"equal": False, "not equal": True}.get(" ".join(text.lower().split()))


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


class LLMRewriter(Rewriter):
    r"""
    Rewriter that sends each operation's prompt ([`Operation.render_prompt`]) to an LLM.

    The answer, stripped, is the new instruction; the request's constraints are carried over unchanged (an LLM adds
    none that can be verified). A failed query gives an empty instruction, which the environment's elimination rules
    drop as `"empty"`. Each request's `seed` is its sampling seed: when the generator samples, the same instruction
    and operation under another seed is another query, and under the same seed the same (cached) rewrite.

    Args:
        generator ([`TextGenerator`]):
            The model that rewrites.
        generation_kwargs (`dict` or `None`, *optional*, defaults to `None`):
            Passed to `generator.generate` with every batch; checked against the backend's settings here.
    """

    def __init__(self, generator: TextGenerator, generation_kwargs: dict | None = None):
        self.generator = generator
        self.generation_kwargs = dict(generation_kwargs or {})
        generator.check_generation_kwargs(self.generation_kwargs, "rewriter.generation_kwargs")

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]:
        prompts = [request.operation.render_prompt(request.instruction) for request in requests]
        seeds = [request.seed for request in requests]
        generations = _generate(self.generator, prompts, self.generation_kwargs, seeds)
        return [
            Rewrite((generation.text or "").strip(), request.constraints, generation.usage)
            for request, generation in zip(requests, generations, strict=True)
        ]


class LLMReviewer(Reviewer):
    r"""
    Reviewer that asks an LLM whether a rewrite adds information, with Evol-Instruct's equality check
    ([WizardLM](https://huggingface.co/papers/2304.12244)): two prompts are "Equal" when they have the same constraints
    and requirements and the same depth and breadth of inquiry. "Not Equal" is an information gain.

    Answers are parsed strictly ([`parse_verdict`]). An answer that is neither verdict, or a failed query, counts as
    no information gain and is reported as failed (`usage.failed`), with a warning.

    Args:
        generator ([`TextGenerator`]):
            The model that judges.
        generation_kwargs (`dict` or `None`, *optional*, defaults to `None`):
            Passed to `generator.generate` with every batch, on top of `{"temperature": 0.0}` (a judge should not
            sample) and a length limit of 8 tokens under the backend's name for it (`generator.max_tokens_key`:
            `max_new_tokens` or `max_tokens`), since a verdict is a few tokens. Checked against the backend here.
        prompt_template (`str` or `None`, *optional*, defaults to `None`):
            The judging prompt, with the placeholders `{original}` and `{rewritten}`. `None` uses the packaged
            `templates/reviewer.txt`.
    """

    def __init__(
        self,
        generator: TextGenerator,
        generation_kwargs: dict | None = None,
        prompt_template: str | None = None,
    ):
        prompt_template = load_reviewer_template() if prompt_template is None else prompt_template
        missing = [placeholder for placeholder in REVIEWER_PLACEHOLDERS if placeholder not in prompt_template]
        if missing:
            raise ValueError(
                f"`prompt_template` lacks the placeholders {', '.join(missing)}; write them where the original and "
                "the rewritten instruction go."
            )
        self.generator = generator
        defaults = {"temperature": 0.0}
        if generator.max_tokens_key is not None:
            defaults[generator.max_tokens_key] = REVIEWER_MAX_TOKENS
        self.generation_kwargs = {**defaults, **(generation_kwargs or {})}
        generator.check_generation_kwargs(self.generation_kwargs, "reviewer.generation_kwargs")
        self.prompt_template = prompt_template

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    def render_prompt(self, original: str, rewritten: str) -> str:
        """Returns the judging prompt. One pass, so an instruction that contains `{rewritten}` stays as written."""
        values = {"original": original, "rewritten": rewritten}
        return _PLACEHOLDER_PATTERN.sub(lambda match: values[match.group(1)], self.prompt_template)

    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        if len(originals) != len(rewrites):
            raise ValueError(f"Got {len(originals)} `originals` but {len(rewrites)} `rewrites`; pass one per item.")
        pairs = zip(originals, rewrites, strict=True)
        prompts = [self.render_prompt(original, rewrite) for original, rewrite in pairs]
        reviews = []
        for generation in _generate(self.generator, prompts, self.generation_kwargs):
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
                reviews.append(Review(False, generation.text or "", replace(generation.usage, failed=True)))
            else:
                reviews.append(Review(verdict, generation.text, generation.usage))
        return reviews


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

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    def respond(self, instructions: list[str]) -> list[Answer]:
        prompts = [
            f"{self.system_prompt}\n\n{instruction}" if self.system_prompt else instruction
            for instruction in instructions
        ]
        seeds = []
        for instruction in instructions:
            seeds.append(self._times_asked[instruction])
            self._times_asked[instruction] += 1
        generations = _generate(self.generator, prompts, self.generation_kwargs, seeds)
        return [Answer((generation.text or "").strip(), generation.usage) for generation in generations]
