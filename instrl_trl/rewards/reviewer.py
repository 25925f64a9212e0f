"""The reviewer's reward from the TeaMs-RL paper: information gain of the new instruction."""


def information_gain_reward(
    instructions: list[str], new_instructions: list[str], accepted: list[bool], **kwargs
) -> list[float]:
    r"""
    Reward function of [TeaMs-RL](https://huggingface.co/papers/2403.08694): 1.0 when the reviewer judges that the new
    instruction gains information over the previous one and the step was accepted (not eliminated, not a stop),
    otherwise 0.0.

    Args:
        instructions (`list[str]`):
            Instructions before the operation was applied.
        new_instructions (`list[str]`):
            Instructions after the operation was applied.
        accepted (`list[bool]`):
            Whether each step was accepted: the reviewer saw an information gain, the new instruction was not
            eliminated, and the policy did not choose to stop. Passed by the environment.
        **kwargs:
            Additional keyword arguments (the other episode fields). This function does not use them, but they are
            required in the function signature to ensure compatibility with [`InstructionGenerationTrainer`].

    Returns:
        `list[float]`:
            A list of rewards, 1.0 for each accepted step, otherwise 0.0.

    Example:
    ```python
    >>> from instrl_trl.rewards import information_gain_reward

    >>> instructions = ["Write a poem.", "Write a poem."]
    >>> new_instructions = ["Write a poem about the sea in four stanzas.", "Write a poem."]
    >>> information_gain_reward(instructions, new_instructions, accepted=[True, False])
    [1.0, 0.0]

    ```
    """
    return [1.0 if is_accepted else 0.0 for is_accepted in accepted]
