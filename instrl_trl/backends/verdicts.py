"""
A reviewer's verdict and its probability, whatever produced it: the two verdicts, strict parsing of a free answer,
and the ways a backend turns what a model offers into P(each choice), which the [`LLMReviewer`] reads as P(gain).

- `likelihood` (transformers): log-likelihoods of the whole choices, normalised ([`choice_probabilities`]).
- `logprobs` (any OpenAI-compatible endpoint): the first token's top log-probabilities ([`first_token_probabilities`]).
- `choice` (vLLM, TGI, llama.cpp): the answer constrained to the choices ([`choice_request_kwargs`]).
- `systemone` (`transformers serve`): a choice question to `/v1/systemone` ([`systemone_body`],
  [`systemone_probabilities`]).
- `parse`: free generation, [`parse_verdict`]; P is 0 or 1.

The backends send the requests (`transformers.py`, `endpoint.py`); this module only builds and reads them.
"""

import math
from collections.abc import Mapping, Sequence

from .base import Prompt, prompt_messages


# The verdicts, information gain first: P(gain) is the first one's probability
VERDICTS = ("Not Equal", "Equal")
# Wrappers that chat models put around a one-word answer: quotes, Markdown bold/italics, inline code
_VERDICT_WRAPPERS = "\"'`*"
# How many alternatives an endpoint returns for the first token (OpenAI's maximum)
TOP_LOGPROBS = 20
# The verdict modes each endpoint server offers, best first: vLLM's `structured_outputs`, TGI's regex grammar and
# llama.cpp's GBNF grammar constrain the answer; transformers serve ignores `logprobs` on chat completions but answers
# `/v1/systemone`
CHOICE_MODES_BY_SERVER = {
    "openai": ("logprobs",),
    "vllm": ("choice", "logprobs"),
    "tgi": ("choice", "logprobs"),
    "sglang": ("choice", "logprobs"),
    "llamacpp": ("choice", "logprobs"),
    "transformers": ("systemone",),
}


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


def choice_probabilities(log_likelihoods: Sequence[float]) -> tuple[float, ...]:
    """
    The choices' log-likelihoods as probabilities that sum to 1 (a softmax, stable for very negative values).

    Example:
    ```python
    >>> [round(p, 3) for p in choice_probabilities([-1.0, -1.0 - math.log(3)])]
    [0.75, 0.25]

    ```
    """
    top = max(log_likelihoods)
    weights = [math.exp(value - top) for value in log_likelihoods]
    return tuple(weight / sum(weights) for weight in weights)


def check_first_words(choices: Sequence[str]) -> None:
    """Raises a `ValueError` unless the choices start with distinct words, which first-token scoring needs."""
    first_words = [choice.split()[0].lower() for choice in choices]
    if len(set(first_words)) != len(first_words):
        raise ValueError(f"The choices {list(choices)} must start with distinct words to be scored.")


def choice_request_kwargs(mode: str, server: str, choices: Sequence[str]) -> dict:
    """
    The keyword arguments of `chat_completion` that ask for a scorable answer: one token with its top
    log-probabilities (`logprobs`), or an answer that may only be one of `choices` (`choice`: vLLM's
    `structured_outputs` choice, SGLang's `regex`, llama.cpp's GBNF `grammar`, TGI's regex grammar, which llama.cpp
    rejects), greedy.
    """
    kwargs = {"max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": TOP_LOGPROBS}
    if mode == "choice":
        kwargs["max_tokens"] = max(len(choice.split()) for choice in choices) * 4
        if server == "vllm":
            # vLLM 0.10.2 and later; 0.12 removed the `guided_choice` field and ignores it (the answer would run free)
            kwargs["extra_body"] = {"structured_outputs": {"choice": list(choices)}}
        elif server == "sglang":
            # SGLang reads a `regex` field beside the OpenAI ones (its structured outputs: json_schema, regex, ebnf)
            kwargs["extra_body"] = {"regex": "(" + "|".join(map(_regex_escape, choices)) + ")"}
        elif server == "llamacpp":
            kwargs["extra_body"] = {"grammar": choice_grammar(choices)}
            # Under a grammar llama.cpp may spell a choice in odd pieces, down to one character a token ("Certainly
            # not" came back cut as "Certainly " after 8 tokens); a choice never takes more tokens than characters
            kwargs["max_tokens"] = max(len(choice) for choice in choices) + 1
        else:  # TGI's grammar
            kwargs["response_format"] = {"type": "regex", "value": "|".join(map(_regex_escape, choices))}
    return kwargs


def choice_grammar(choices: Sequence[str]) -> str:
    r"""
    A GBNF grammar (llama.cpp's) whose only sentences are `choices`.

    Example:
    ```python
    >>> print(choice_grammar(["Not Equal", "Equal"]))
    root ::= "Not Equal" | "Equal"

    ```
    """
    # In a GBNF string literal, `"` and `\` are escaped with a backslash, and newlines are written `\n`
    literals = [
        '"' + choice.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"' for choice in choices
    ]
    return "root ::= " + " | ".join(literals)


def first_token_probabilities(output, choices: Sequence[str]) -> tuple[float, ...] | None:
    """
    Each choice's share of the first token's top probabilities in a chat completion (the tokens that start its
    first word), or `None` when there are none or no token starts a choice.
    """
    try:
        top = output.choices[0].logprobs.content[0].top_logprobs
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    if not top:
        return None
    first_words = [choice.split()[0].lower() for choice in choices]
    mass = [0.0] * len(choices)
    for entry in top:
        token = (getattr(entry, "token", None) or "").strip().lower()
        if not token:
            continue
        for i, word in enumerate(first_words):
            # A tokenizer may split the word: "Not" may come as "N"; a prefix of only one choice's word counts
            if word.startswith(token) and sum(other.startswith(token) for other in first_words) == 1:
                mass[i] += math.exp(_log_probability(entry))
    total = sum(mass)
    return tuple(value / total for value in mass) if total > 0 else None


def _log_probability(entry) -> float:
    """A top-log-probability entry's `logprob`; raises `ValueError` when it is not a log-probability."""
    value = getattr(entry, "logprob", None)
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value > 1e-3:  # a little above 0 is float rounding of a certain token
        raise ValueError(f"A top log-probability is {value!r}, not a log-probability (a finite number <= 0).")
    return min(float(value), 0.0)


def answered_choice(text: str, choices: Sequence[str]) -> tuple[float, ...] | None:
    """A constrained answer without log-probabilities: certain of the choice it names, `None` if it names none."""
    answer = text.strip()
    return tuple(float(choice == answer) for choice in choices) if answer in choices else None


def systemone_body(model: str, prompt: Prompt, choices: Sequence[str]) -> dict:
    """The `/v1/systemone` request of `transformers serve` that asks which of `choices` answers `prompt`."""
    return {
        "model": model,
        "state": "\n\n".join(message["content"] for message in prompt_messages(prompt)),
        "questions": {"answer": {"type": "choice", "criteria": dict.fromkeys(choices)}},
    }


def systemone_probabilities(data: Mapping, choices: Sequence[str]) -> tuple[float, ...]:
    """The probability per choice in a `/v1/systemone` answer; raises `ValueError` when it has none."""
    try:
        by_option = data["answers"]["answer"]["probabilities"]
        return tuple(float(by_option[choice]) for choice in choices)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"No probability per choice in the /v1/systemone answer ({error}).") from None


def _regex_escape(text: str) -> str:
    return "".join("\\" + character if character in r".^$*+?{}[]\|()" else character for character in text)
