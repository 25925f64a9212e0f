"""
What counts as an answer from a chat-completions endpoint, for [`EndpointGenerator`]: the text and token counts of a
[`~huggingface_hub.ChatCompletionOutput`], checked ([`parse_chat_output`]), and the [`Generation`] they make
([`read_generation`]).

- A `200` that is not a chat completion (no `choices[0].message.content`, a count of tokens that is not one) is a
  [`MalformedResponse`], which a retry cannot fix.
- A reasoning model's thinking is not its answer (`thinking.py`): the text after the last `</think>` is (a server
  without a reasoning parser leaves the thinking in `content`). An answer that is all thinking (`content` empty and the
  thinking in `reasoning_content` / `reasoning`, or a `<think>` never closed) is a [`ReasoningWithoutAnswer`]: the
  model spent the length limit thinking, a retry would too, and the fix is `max_tokens` or turning thinking off.
- An empty or whitespace answer is an [`EmptyAnswer`], which is retried (an overloaded or restarting server does this)
  and, when every attempt gets one, a failed query: never cached, counted by the failure budget.
- An answer longer than `max_tokens` tokens can be is cut to that length, with `finish_reason="length"`; the caller
  warns once per call.
"""

import math

from .base import Generation, Usage
from .endpoint_transport import MalformedResponse, max_answer_characters
from .thinking import THINK_END, THINKING_FIX, answer_after_thinking


class EmptyAnswer(Exception):
    """The server answered `200` with no text (retryable: an overloaded or restarting server does this)."""


class ReasoningWithoutAnswer(MalformedResponse):
    """A reasoning model spent the answer's length thinking and gave no answer; a retry would do the same."""

    fix = THINKING_FIX


def read_generation(output, max_tokens: int | None, seconds: float) -> tuple[Generation, bool]:
    """
    The [`Generation`] of one chat completion that took `seconds`, and whether its text was cut to the length
    `max_tokens` allows; raises [`EmptyAnswer`] when there is no text to keep and [`MalformedResponse`] when `output`
    is not a chat completion.
    """
    text, prompt_tokens, completion_tokens = parse_chat_output(output)
    if not text.strip():
        raise EmptyAnswer("empty answer: the server answered 200 with no text")
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, seconds=seconds)
    limit = max_answer_characters(max_tokens)
    if len(text) > limit:
        if not text[:limit].strip():  # what `max_tokens` allows of it is whitespace: no answer either
            raise EmptyAnswer(f"empty answer: the first {limit} characters the length limit keeps are blank")
        return Generation(text[:limit], usage, "length"), True
    return Generation(text, usage, finish_reason(output)), False


def parse_chat_output(output) -> tuple[str, int, int]:
    """The text and token counts of a [`~huggingface_hub.ChatCompletionOutput`]; raises `MalformedResponse`."""
    try:
        message = output.choices[0].message
        text = message.content
    except (AttributeError, IndexError, KeyError, TypeError) as error:
        raise MalformedResponse(f"No `choices[0].message.content` in the answer ({error}).") from None
    # A server with a reasoning parser (vLLM, SGLang) returns the thinking apart, in one of these two fields
    reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
    no_text = text is None or (isinstance(text, str) and not text.strip())
    if no_text and isinstance(reasoning, str) and reasoning.strip():
        raise ReasoningWithoutAnswer(
            f"the answer is {len(reasoning)} characters of reasoning and no text (finish_reason "
            f"{finish_reason(output)!r})"
        )
    if not isinstance(text, str):
        raise MalformedResponse(f"`choices[0].message.content` is {type(text).__name__}, not text.")
    answer = answer_after_thinking(text)
    if answer is None:
        raise ReasoningWithoutAnswer(f"the answer is {len(text)} characters of reasoning whose {THINK_END} never came")
    usage = getattr(output, "usage", None)
    prompt_tokens = token_count(getattr(usage, "prompt_tokens", None), "usage.prompt_tokens")
    return answer, prompt_tokens, token_count(getattr(usage, "completion_tokens", None), "usage.completion_tokens")


def finish_reason(output) -> str | None:
    """The answer's `finish_reason` (`"stop"`, `"length"`, ...) when the server gives one."""
    reason = getattr(output.choices[0], "finish_reason", None)
    return reason if isinstance(reason, str) and reason else None


def token_count(value, name: str) -> int:
    """`value` as a count of tokens (0 when the server gives none); raises `MalformedResponse` if it is not one."""
    if value is None:
        return 0
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value < 0 or value != int(value):
        raise MalformedResponse(f"`{name}` is {value!r}, not a count of tokens.")
    return int(value)
