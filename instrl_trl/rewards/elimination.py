"""Penalty for new instructions that the environment eliminates."""


def elimination_penalty(
    instructions: list[str], new_instructions: list[str], elimination: list[str | None], **kwargs
) -> list[float]:
    r"""
    Reward function that returns -1.0 for each new instruction the environment eliminated (for example a copy of the
    prompt, a refusal, or an instruction that lost its content), otherwise 0.0.

    Args:
        instructions (`list[str]`):
            Instructions before the operation was applied.
        new_instructions (`list[str]`):
            Instructions after the operation was applied.
        elimination (`list[str | None]`):
            For each step, the id of the elimination reason, or `None` when the new instruction was kept. Passed by
            the environment.
        **kwargs:
            Additional keyword arguments (the other episode fields). This function does not use them, but they are
            required in the function signature to ensure compatibility with [`InstructionGenerationTrainer`].

    Returns:
        `list[float]`:
            A list of rewards, -1.0 for each eliminated instruction, otherwise 0.0.

    Example:
    ```python
    >>> from instrl_trl.rewards import elimination_penalty

    >>> instructions = ["Write a poem.", "Write a poem."]
    >>> new_instructions = ["Write a poem about the sea.", "I'm sorry, I cannot help with that."]
    >>> elimination_penalty(instructions, new_instructions, elimination=[None, "refusal"])
    [0.0, -1.0]

    ```
    """
    return [-1.0 if reason is not None else 0.0 for reason in elimination]
