"""
Benchmark test prompts kept out of training data: seeds that match a prompt of a packaged benchmark sample are refused.

A model tuned on data built from a benchmark's own test prompts is no longer measured on held-out prompts (IFBench's
point is out-of-distribution generalisation). The seed loaders call [`check_not_benchmark_prompts`] on the seed
instructions before any query is spent.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


# The packaged benchmark samples (`instrl_trl/data/`), by benchmark name
BENCHMARK_SAMPLES = {"ifeval": "ifeval_sample.jsonl", "ifbench": "ifbench_sample.jsonl"}
# A seed and a prompt that contain one another match when the shorter has at least this many characters (normalised):
# about ten words, enough that a shared passage is a copy rather than a common phrase.
MIN_CONTAINED_CHARS = 50


@dataclass(frozen=True)
class BenchmarkPrompt:
    r"""
    One test prompt of a packaged benchmark sample.

    Parameters:
        benchmark (`str`):
            The benchmark's name (`ifeval`, `ifbench`).
        key (`str`):
            The row's `key`, as a string.
        text (`str`):
            The prompt, normalised ([`normalize`]).
    """

    benchmark: str
    key: str
    text: str


def normalize(text: str) -> str:
    """Casefolded, with every run of whitespace made one space and the ends stripped: how texts are compared."""
    return re.sub(r"\s+", " ", text).strip().casefold()


@cache
def benchmark_prompts() -> tuple[BenchmarkPrompt, ...]:
    """The prompts of every packaged benchmark sample (read once)."""
    prompts = []
    for benchmark, file_name in BENCHMARK_SAMPLES.items():
        for line in files("instrl_trl.data").joinpath(file_name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                prompts.append(BenchmarkPrompt(benchmark, str(row["key"]), normalize(row["prompt"])))
    return tuple(prompts)


class _PromptIndex:
    """Finds, in linear time per text, a benchmark prompt equal to it, contained in it, or containing it."""

    def __init__(self, prompts: Iterable[BenchmarkPrompt]):
        self.prompts = list(prompts)
        self.equal = {prompt.text: prompt for prompt in self.prompts}
        # prompts long enough to count when contained in a seed, by their first MIN_CONTAINED_CHARS characters
        self.heads: dict[str, list[BenchmarkPrompt]] = {}
        for prompt in self.prompts:
            if len(prompt.text) >= MIN_CONTAINED_CHARS:
                self.heads.setdefault(prompt.text[:MIN_CONTAINED_CHARS], []).append(prompt)
        # every window of MIN_CONTAINED_CHARS characters of every prompt: where a long seed may start inside one
        self.windows = {
            prompt.text[i : i + MIN_CONTAINED_CHARS]
            for prompt in self.prompts
            for i in range(len(prompt.text) - MIN_CONTAINED_CHARS + 1)
        }

    def find(self, text: str) -> BenchmarkPrompt | None:
        if text in self.equal:
            return self.equal[text]
        if len(text) < MIN_CONTAINED_CHARS:
            return None
        if text[:MIN_CONTAINED_CHARS] in self.windows:  # the seed may be part of a prompt
            for prompt in self.prompts:
                if text in prompt.text:
                    return prompt
        for start in range(len(text) - MIN_CONTAINED_CHARS + 1):  # a prompt may be part of the seed
            for prompt in self.heads.get(text[start : start + MIN_CONTAINED_CHARS], ()):
                if text.startswith(prompt.text, start):
                    return prompt
        return None


def find_benchmark_prompts(instructions: Iterable[str]) -> list[tuple[int, BenchmarkPrompt]]:
    r"""
    The instructions that match a test prompt of a packaged benchmark sample.

    After [`normalize`], an instruction matches a prompt when they are equal, or when one contains the other and the
    shorter has at least `MIN_CONTAINED_CHARS` characters (a prompt with its constraint sentence cut off, a prompt
    with a sentence added).

    Args:
        instructions (`Iterable[str]`):
            The texts to check (non-strings are ignored).

    Returns:
        `list[tuple[int, BenchmarkPrompt]]`: the position of each matching instruction and the prompt it matches.
    """
    index = _PromptIndex(benchmark_prompts())
    matches = []
    for position, instruction in enumerate(instructions):
        if isinstance(instruction, str):
            prompt = index.find(normalize(instruction))
            if prompt is not None:
                matches.append((position, prompt))
    return matches


def check_not_benchmark_prompts(instructions: Iterable[str], column: str = "instruction") -> None:
    r"""
    Refuses seed instructions that match a test prompt of a packaged benchmark sample (IFEval's, IFBench's).

    Args:
        instructions (`Iterable[str]`):
            The seed instructions.
        column (`str`, *optional*, defaults to `"instruction"`):
            The seed column they come from, named in the error.

    Raises:
        `ValueError`: some seeds match; the message names the column, the rows (first five), the benchmark and key
            of each prompt matched, and the fix.

    Example:

    ```python
    >>> check_not_benchmark_prompts(["Write a haiku about the sea."])
    >>> check_not_benchmark_prompts([benchmark_prompts()[0].text])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: 1 seed in column 'instruction' matches a benchmark test prompt: row 0: ifeval key ...

    ```
    """
    matches = find_benchmark_prompts(instructions)
    if not matches:
        return
    shown = "; ".join(f"row {position}: {prompt.benchmark} key {prompt.key}" for position, prompt in matches[:5])
    more = f" (and {len(matches) - 5} more)" if len(matches) > 5 else ""
    plural = len(matches) > 1
    raise ValueError(
        f"{len(matches)} seed{'s' if plural else ''} in column {column!r} match{'' if plural else 'es'} a benchmark "
        f"test prompt: {shown}{more} (equal to it, containing it, or part of it). Benchmark prompts must stay out of "
        "training data, or the benchmark no longer measures held-out instruction following: remove these rows from "
        "the seeds."
    )
