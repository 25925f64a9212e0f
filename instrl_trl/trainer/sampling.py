"""
The order in which the trainer sees its seeds: TRL's `RepeatSampler`, reseeded per epoch, and (for overlapped
rollouts) each seed paired with the seed at its place in the next rollout, so that a process knows its next rollout's
seeds while it trains on this one.
"""

import torch

from ._trl import RepeatSampler


# The key of a seed's counterpart in the next generation batch, in the rows `SeedPairs` gives
NEXT_SEED_KEY = "_next_seed"


class EpochSeededRepeatSampler(RepeatSampler):
    """
    TRL's `RepeatSampler`, reseeded with `seed + epoch` at each epoch. `RepeatSampler` seeds its generator once, so a
    run resumed in a later epoch would replay epoch 0's order (weights off by 0.012 measured); the Trainer calls
    `set_epoch` before each epoch.

    With `with_next`, each index comes as a pair `(index, next_index)`: `next_index` is the index at the same place of
    the next generation batch (the first batch of the next epoch after the last one of an epoch; `None` without a
    seed, which leaves the next epoch's order unknown). Accelerate gives each process the same places of every batch,
    so a process's pairs name its own share of the next batch.
    """

    def __init__(self, *args, with_next: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.with_next = with_next
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.seed is not None:
            self.generator.manual_seed(self.seed + epoch)

    def _batches(self, generator: torch.Generator | None) -> list[list[int]]:
        """An epoch's generation batches, as `RepeatSampler.__iter__` cuts them."""
        if self.shuffle:
            indexes = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            indexes = list(range(self.num_samples))
        batches = [indexes[i : i + self.batch_size] for i in range(0, len(indexes), self.batch_size)]
        return [batch for batch in batches if len(batch) == self.batch_size]

    def __iter__(self):
        if not self.with_next:
            yield from super().__iter__()
            return
        batches = self._batches(self.generator if self.shuffle else None)
        if not self.shuffle:
            following = batches[:1]
        elif self.seed is not None:
            following = self._batches(torch.Generator().manual_seed(self.seed + self.epoch + 1))[:1]
        else:
            following = []
        for position, batch in enumerate(batches):
            upcoming = (batches[position + 1 :] + following)[:1]
            for _ in range(self.repeat_count):
                for place, index in enumerate(batch):
                    pair = (index, upcoming[0][place] if upcoming else None)
                    for _ in range(self.mini_repeat_count):
                        yield pair


class SeedPairs(torch.utils.data.Dataset):
    """
    The seed dataset read through the pairs of an [`EpochSeededRepeatSampler`] with `with_next`: the row of `index`,
    with the seed of `next_index` under [`NEXT_SEED_KEY`] (`None` when there is no next batch).
    """

    def __init__(self, dataset, column: str):
        self.dataset = dataset
        self.column = column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, pair: tuple[int, int | None]) -> dict:
        index, next_index = pair
        row = dict(self.dataset[index])
        row[NEXT_SEED_KEY] = None if next_index is None else self.dataset[next_index][self.column]
        return row
