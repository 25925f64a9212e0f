"""
The order in which the trainer sees its seeds: TRL's `RepeatSampler`, reseeded per epoch, and (for rollouts played
ahead, `rollouts_ahead`) each seed with the seeds at its place in the next rollouts, so that a process knows the seeds
of the rollouts it plays ahead while it trains on this one.
"""

import torch

from ._trl import RepeatSampler


# The key of a seed's counterparts in the next generation batches, in the rows `SeedsAhead` gives
NEXT_SEEDS_KEY = "_next_seeds"


class EpochSeededRepeatSampler(RepeatSampler):
    """
    TRL's `RepeatSampler`, reseeded with `seed + epoch` at each epoch. `RepeatSampler` seeds its generator once, so a
    run resumed in a later epoch would replay epoch 0's order (weights off by 0.012 measured); the Trainer calls
    `set_epoch` before each epoch.

    With `lookahead` > 0, each index comes as a tuple `(index, next_1, ..., next_lookahead)`: `next_i` is the index at
    the same place of the generation batch `i` batches later (in the next epochs past the last batch of this one;
    `None` without a seed, which leaves the next epochs' order unknown). Accelerate gives each process the same places
    of every batch, so a process's tuples name its own share of the next batches.
    """

    def __init__(self, *args, lookahead: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookahead = lookahead
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

    def _following_batches(self) -> list[list[int]]:
        """The first `lookahead` batches of the epochs after this one, as far as their order is known."""
        following, epoch = [], self.epoch
        while len(following) < self.lookahead:
            epoch += 1
            if not self.shuffle:
                batches = self._batches(None)
            elif self.seed is not None:
                batches = self._batches(torch.Generator().manual_seed(self.seed + epoch))
            else:
                break
            if not batches:
                break
            following.extend(batches)
        return following[: self.lookahead]

    def __iter__(self):
        if not self.lookahead:
            yield from super().__iter__()
            return
        batches = self._batches(self.generator if self.shuffle else None)
        batches_and_following = batches + self._following_batches()
        for position, batch in enumerate(batches):
            ahead = batches_and_following[position + 1 : position + 1 + self.lookahead]
            ahead += [None] * (self.lookahead - len(ahead))
            for _ in range(self.repeat_count):
                for place, index in enumerate(batch):
                    entry = (index, *(None if later is None else later[place] for later in ahead))
                    for _ in range(self.mini_repeat_count):
                        yield entry


class SeedsAhead(torch.utils.data.Dataset):
    """
    The seed dataset read through the tuples of an [`EpochSeededRepeatSampler`] with `lookahead`: the row of `index`,
    with the seeds of `next_1, ..., next_lookahead` under [`NEXT_SEEDS_KEY`] (`None` for a batch not known).
    """

    def __init__(self, dataset, column: str):
        self.dataset = dataset
        self.column = column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, entry: tuple) -> dict:
        index, *ahead = entry
        row = dict(self.dataset[index])
        row[NEXT_SEEDS_KEY] = [None if later is None else self.dataset[later][self.column] for later in ahead]
        return row
