"""
A reasoning model's thinking is not its answer. Qwen3, DeepSeek-R1 and their distillations write `<think>...</think>`
before they answer (R1's chat template opens the `<think>` in the prompt, so the completion may hold only the closing
tag); the answer is what follows the last `</think>`. A completion that opens `<think>` and never closes it was cut at
the length limit while thinking: it has no answer, and asking again would think as long. Both backends read answers
this way: a local model (`transformers.py`) and an endpoint (`endpoint_answers.py`, which also reads the thinking that
a server's reasoning parser returns apart).
"""

THINK_START, THINK_END = "<think>", "</think>"
# What to change when a model thinks until the length limit
THINKING_FIX = (
    "Raise the role's length limit in its `generation_kwargs` (`max_tokens` for an endpoint, `max_new_tokens` for a "
    "local model), or turn the model's thinking off (Qwen3: `chat_template_kwargs: {enable_thinking: false}` in the "
    "role's settings for a local model, in its `extra_body` for vLLM or SGLang)."
)


def answer_after_thinking(text: str) -> str | None:
    """
    `text` without a reasoning model's thinking: what follows the last `</think>`, or `text` itself when it has none;
    `None` when a `<think>` is never closed (the answer is all thinking).

    Example:
    ```python
    >>> answer_after_thinking("<think>They want a haiku.</think> Snow on the branches")
    'Snow on the branches'
    >>> answer_after_thinking("Snow on the branches"), answer_after_thinking("<think>A haiku has three")
    ('Snow on the branches', None)

    ```
    """
    if THINK_END in text:
        return text.rpartition(THINK_END)[2].lstrip()
    if text.lstrip().startswith(THINK_START):
        return None
    return text
