"""Dataset-level diversity: reward accepted instructions that differ from those accepted before."""

from collections import deque
from typing import Any

import torch

from ..embeddings import SentenceEmbedder


class NoveltyReward:
    r"""
    Reward function that scores each accepted new instruction by its novelty, `1 - max cosine similarity` to the
    instructions accepted so far, clipped to `[0, 1]`. Non-accepted steps get 0.0.

    The memory of accepted instructions spans calls (the whole generated dataset, not one batch) and keeps the
    embeddings of the last `max_memory` of them. Within a batch, items are processed in order: an accepted item is also
    compared with the accepted items before it in the same batch, so the result does not depend on how the batch is
    split. The first accepted instruction ever gets 1.0.

    Args:
        embedder ([`~instrl_trl.embeddings.SentenceEmbedder`] or `None`, *optional*, defaults to `None`):
            Object with an `encode(texts: list[str]) -> torch.Tensor` method returning L2-normalized embeddings.
            `None` creates a [`~instrl_trl.embeddings.SentenceEmbedder`] with the default model on first use.
        max_memory (`int`, *optional*, defaults to `4096`):
            Maximum number of accepted instructions remembered; the oldest are forgotten first.

    Example:
    ```python
    >>> from instrl_trl.rewards import NoveltyReward

    >>> novelty = NoveltyReward()
    >>> instructions = ["Write a poem.", "Write a poem.", "Name a fruit."]
    >>> new_instructions = [
    ...     "Write a poem about the sea.",
    ...     "Write a short poem about the ocean.",
    ...     "Name a fruit that is red.",
    ... ]
    >>> rewards = novelty(instructions, new_instructions, accepted=[True, True, False])
    >>> rewards[0], rewards[1] < 0.5, rewards[2]
    (1.0, True, 0.0)

    ```
    """

    def __init__(self, embedder: SentenceEmbedder | None = None, max_memory: int = 4096):
        if max_memory < 1:
            raise ValueError(f"`max_memory` must be a positive integer, got {max_memory}.")
        # GRPO-style trainers name reward functions after `__name__` (metric key `rewards/novelty/mean`).
        self.__name__ = "novelty"
        self._embedder = embedder
        self.max_memory = max_memory
        self.memory: deque[torch.Tensor] = deque(maxlen=max_memory)

    @property
    def embedder(self) -> SentenceEmbedder:
        if self._embedder is None:
            self._embedder = SentenceEmbedder()
        return self._embedder

    def __call__(
        self, instructions: list[str], new_instructions: list[str], accepted: list[bool], **kwargs
    ) -> list[float]:
        r"""
        Computes the novelty rewards and adds the accepted instructions to the memory.

        Args:
            instructions (`list[str]`):
                Instructions before the operation was applied.
            new_instructions (`list[str]`):
                Instructions after the operation was applied.
            accepted (`list[bool]`):
                Whether each step was accepted. Only accepted instructions are scored and remembered.
            **kwargs:
                Additional keyword arguments (the other episode fields), unused.

        Returns:
            `list[float]`:
                A list of rewards in `[0, 1]`, 0.0 for each non-accepted step.
        """
        accepted_indices = [i for i, is_accepted in enumerate(accepted) if is_accepted]
        rewards = [0.0] * len(new_instructions)
        if not accepted_indices:
            return rewards

        batch = self.embedder.encode([new_instructions[i] for i in accepted_indices])
        num_memory, num_batch = len(self.memory), batch.shape[0]
        candidates = torch.cat([torch.stack(list(self.memory)), batch]) if num_memory else batch
        similarities = batch @ candidates.T  # (num_batch, num_memory + num_batch)

        # Batch item j sits at row num_memory + j of `candidates`. Processed in order, it sees the items before it that
        # the bounded memory still holds at that time: rows [num_memory + j - max_memory, num_memory + j).
        positions = torch.arange(num_memory + num_batch)
        current = num_memory + torch.arange(num_batch).unsqueeze(1)
        visible = (positions < current) & (positions >= current - self.max_memory)
        max_similarity = similarities.masked_fill(~visible, float("-inf")).amax(dim=1)
        # Nothing visible gives -inf, so novelty 1.0 after clipping
        novelty = (1.0 - max_similarity).clamp(0.0, 1.0)

        self.memory.extend(batch)
        for index, value in zip(accepted_indices, novelty.tolist(), strict=True):
            rewards[index] = value
        return rewards

    def state_dict(self) -> dict[str, Any]:
        r"""
        Returns the memory as a JSON-serializable dict, so a trainer can save it with its checkpoint.

        Returns:
            `dict[str, Any]`:
                `{"max_memory": int, "embeddings": list[list[float]]}`, embeddings oldest first. `float32` values
                round-trip exactly through JSON.
        """
        embeddings = torch.stack(list(self.memory)).tolist() if self.memory else []
        return {"max_memory": self.max_memory, "embeddings": embeddings}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""
        Restores the memory saved by [`~NoveltyReward.state_dict`]. If the saved memory is longer than this instance's
        `max_memory`, only the most recent embeddings are kept.

        Args:
            state_dict (`dict[str, Any]`):
                Dict returned by [`~NoveltyReward.state_dict`].
        """
        self.memory.clear()
        embeddings = state_dict["embeddings"]
        if embeddings:
            self.memory.extend(torch.tensor(embeddings, dtype=torch.float32))
