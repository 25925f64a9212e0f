"""
A [`TextGenerator`] through the [`ResponseCache`]: the answers already paid for are read back, only the misses are
asked, and every successful answer is stored.
"""

import json
import os
from dataclasses import replace
from typing import Self

from .base import ChoiceScores, Generation, Prompt, TextGenerator, Usage
from .cache import ResponseCache, cache_key, is_answer
from .thinking import answer_after_thinking


class CachedGenerator(TextGenerator):
    r"""
    Wraps a [`TextGenerator`] with a [`ResponseCache`]. It answers as the wrapped generator would (same `backend`,
    `model_name` and `cache_identity()`), but pays only for prompts the cache does not hold.

    In one [`~CachedGenerator.generate`] call, hits are read from the cache (`Usage(cached=True, seconds=0.0)`, token
    counts as stored), and the misses, each distinct prompt once and in order of first appearance, go to the wrapped
    generator in a single batch. Its successful answers are stored; failures and empty answers are not, so they are
    asked again next time. A prompt repeated within the batch is answered from the first occurrence and reported as
    cached.

    Sampling seeds (`seeds` of [`~CachedGenerator.generate`]) are part of the key when the wrapped generator samples
    with the call's settings ([`TextGenerator.samples`]): a retry with a new seed is a new query. Under greedy
    decoding they are left out of the key and not sent, since every seed would give the same answer.

    Args:
        generator ([`TextGenerator`]):
            The generator to wrap.
        cache ([`ResponseCache`], `str` or `os.PathLike`):
            The cache, or the path of its file (then this object owns it and [`~CachedGenerator.close`] closes it).
    """

    def __init__(self, generator: TextGenerator, cache: ResponseCache | str | os.PathLike):
        self.generator = generator
        self._owns_cache = not isinstance(cache, ResponseCache)
        self.cache = ResponseCache(cache) if self._owns_cache else cache

    @property
    def backend(self) -> str:
        return self.generator.backend

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    @property
    def max_tokens_key(self) -> str | None:
        return self.generator.max_tokens_key

    def cache_identity(self) -> dict:
        return self.generator.cache_identity()

    def check_generation_kwargs(self, generation_kwargs: dict, where: str = "generation_kwargs") -> None:
        self.generator.check_generation_kwargs(generation_kwargs, where)

    def samples(self, generation_kwargs: dict) -> bool:
        return self.generator.samples(generation_kwargs)

    @property
    def choice_modes(self) -> tuple[str, ...]:
        return self.generator.choice_modes

    def score_choices(self, prompts: list[Prompt], choices, mode: str) -> list[ChoiceScores]:
        """[`TextGenerator.score_choices`] through the cache: the scores are stored as JSON under their own key."""
        identity = self.generator.cache_identity()
        settings = {"score_choices": list(choices), "mode": mode}
        keys = [cache_key(identity, prompt, settings) for prompt in prompts]
        found = self.cache.get_many(keys)
        missing = [i for i, key in enumerate(keys) if key not in found]
        fresh = self.generator.score_choices([prompts[i] for i in missing], choices, mode) if missing else []
        stored = {
            keys[i]: Generation(json.dumps({"probabilities": scores.probabilities, "text": scores.text}), scores.usage)
            for i, scores in zip(missing, fresh, strict=True)
            if scores.probabilities is not None
        }
        self.cache.put_many(stored)
        by_index = dict(zip(missing, fresh, strict=True))
        results = []
        for i, key in enumerate(keys):
            if i in by_index:
                results.append(by_index[i])
            else:
                data = json.loads(found[key].text)
                results.append(ChoiceScores(tuple(data["probabilities"]), data["text"], found[key].usage))
        return results

    def generate(self, prompts: list[Prompt], seeds: list[int] | None = None, **generation_kwargs) -> list[Generation]:
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"Got {len(seeds)} `seeds` for {len(prompts)} prompts; pass one seed per prompt.")
        if seeds is None or not self.generator.samples(generation_kwargs):
            seeds = [None] * len(prompts)
        identity = self.generator.cache_identity()
        keys = [
            cache_key(identity, prompt, generation_kwargs, seed) for prompt, seed in zip(prompts, seeds, strict=True)
        ]
        found = without_thinking(self.cache.get_many(keys))
        to_ask: dict[str, tuple[Prompt, int | None]] = {}  # key -> (prompt, seed), each missing key once, in order
        for key, prompt, seed in zip(keys, prompts, seeds, strict=True):
            if key not in found:
                to_ask.setdefault(key, (prompt, seed))

        fresh: dict[str, Generation] = {}
        if to_ask:
            asked_prompts = [prompt for prompt, _ in to_ask.values()]
            asked_seeds = [seed for _, seed in to_ask.values()]
            if all(seed is None for seed in asked_seeds):
                asked_seeds = None
            generations = self.generator.generate(asked_prompts, seeds=asked_seeds, **generation_kwargs)
            if len(generations) != len(to_ask):
                raise RuntimeError(
                    f"The {self.backend!r} generator returned {len(generations)} generations for {len(to_ask)} "
                    "prompts; a `TextGenerator` must return one per prompt, in order."
                )
            fresh = dict(zip(to_ask, generations, strict=True))
            self.cache.put_many((key, generation) for key, generation in fresh.items() if is_answer(generation.text))

        results, answered = [], set()
        for key in keys:
            if key in found:
                results.append(found[key])
            elif key not in answered:
                results.append(fresh[key])
                answered.add(key)
            else:
                results.append(_repeat(fresh[key]))
        return results

    def close(self) -> None:
        """Closes the cache if this object opened it from a path."""
        if self._owns_cache:
            self.cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _repeat(generation: Generation) -> Generation:
    # a repeat within one batch was not paid for: it counts as a cache hit, and a failure stays a failure
    usage = generation.usage
    return Generation(
        generation.text,
        Usage(
            cached=True,
            failed=generation.text is None or usage.failed,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        ),
        generation.finish_reason,
    )


def without_thinking(found: dict[str, Generation]) -> dict[str, Generation]:
    """
    Cached answers as the backends give them now: a reasoning model's thinking left out (answers cached by older
    versions kept it), and one that is all thinking a miss, asked again (the backend fails it, with the fix).
    """
    kept = {}
    for key, generation in found.items():
        text = answer_after_thinking(generation.text)
        if is_answer(text):
            kept[key] = generation if text == generation.text else replace(generation, text=text)
    return kept
