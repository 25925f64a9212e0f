"""Cost of a step in LLM queries, to trade instruction quality against query budget."""


def query_cost(instructions: list[str], new_instructions: list[str], queries: list[int], **kwargs) -> list[float]:
    r"""
    Reward function that returns minus the number of LLM queries spent on each step (rewriting, reviewing), so that
    the policy learns to reach good instructions with fewer queries. Weight it with `reward_weights`.

    Args:
        instructions (`list[str]`):
            Instructions before the operation was applied.
        new_instructions (`list[str]`):
            Instructions after the operation was applied.
        queries (`list[int]`):
            Number of LLM queries spent on each step (cached answers are not counted). Passed by the environment.
        **kwargs:
            Additional keyword arguments (the other episode fields). This function does not use them, but they are
            required in the function signature to ensure compatibility with [`InstructionGenerationTrainer`].

    Returns:
        `list[float]`:
            A list of rewards, `-queries` for each step.

    Example:
    ```python
    >>> from instrl_trl.rewards import query_cost

    >>> instructions = ["Write a poem.", "Write a poem."]
    >>> new_instructions = ["Write a poem about the sea.", "Write a poem."]
    >>> query_cost(instructions, new_instructions, queries=[2, 0])
    [-2.0, 0.0]

    ```
    """
    return [float(-num_queries) for num_queries in queries]
