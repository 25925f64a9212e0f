"""
What an LLM judge did, in sums that add over batches, logging windows and processes: verdicts that failed, the spread
of P(information gain), and agreement with a reference reviewer on the same pairs. A confident but useless judge
(every P near the same value, whatever the rewrite) stays visible this way, where the accepted rate alone hides it.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

from .base import Review


# A window of fewer scored reviews says nothing about spread; below MIN_SPREAD the judge barely discriminates
MIN_REVIEWS_FOR_SPREAD = 20
MIN_SPREAD = 0.05


@dataclass
class ReviewStatistics:
    r"""
    Sums over a judge's reviews. `a - b` gives what happened between two snapshots (a logging window), `a + b` joins
    two runs or processes.

    Parameters:
        reviews (`int`): reviews asked for.
        failed (`int`): reviews without a verdict (a failed query, or an answer that is neither verdict).
        scored (`int`): reviews with a P(information gain).
        gains (`int`): scored reviews judged an information gain.
        compared (`int`): scored reviews also judged by the reference reviewer.
        agreed (`int`): compared reviews whose verdict is the reference's.
        p_gain_sum (`float`), p_gain_sum_of_squares (`float`): sums of P(gain) and of its square over scored reviews.

    Example:
    ```python
    >>> from instrl_trl.backends.base import Review
    >>> statistics = ReviewStatistics()
    >>> statistics.add([Review(True, "Not Equal", probability=0.9), Review(False, "", None)])
    >>> statistics.failed_share, statistics.p_gain_mean, statistics.agreement
    (0.5, 0.9, None)

    ```
    """

    reviews: int = 0
    failed: int = 0
    scored: int = 0
    gains: int = 0
    compared: int = 0
    agreed: int = 0
    p_gain_sum: float = 0.0
    p_gain_sum_of_squares: float = 0.0

    def add(self, reviews: Sequence[Review], references: Sequence[Review] | None = None) -> None:
        """Counts `reviews`, and their agreement with `references` (the reference reviewer's, on the same pairs)."""
        for k, review in enumerate(reviews):
            self.reviews += 1
            if review.probability is None:
                self.failed += 1
                continue
            self.scored += 1
            self.gains += int(review.information_gain)
            self.p_gain_sum += review.probability
            self.p_gain_sum_of_squares += review.probability**2
            if references is not None:
                self.compared += 1
                self.agreed += int(review.information_gain == references[k].information_gain)

    def __add__(self, other: "ReviewStatistics") -> "ReviewStatistics":
        return ReviewStatistics(*(a + b for a, b in zip(self.to_list(), other.to_list(), strict=True)))

    def __sub__(self, other: "ReviewStatistics") -> "ReviewStatistics":
        return ReviewStatistics(*(a - b for a, b in zip(self.to_list(), other.to_list(), strict=True)))

    def to_list(self) -> list[float]:
        """The sums in field order, for one all-reduce over processes ([`ReviewStatistics.from_list`] reads it)."""
        return [getattr(self, f.name) for f in fields(self)]

    @classmethod
    def from_list(cls, values: Sequence[float]) -> "ReviewStatistics":
        return cls(*(f.type(value) for f, value in zip(fields(cls), values, strict=True)))

    @classmethod
    def from_dict(cls, values: Mapping[str, float]) -> "ReviewStatistics":
        """From a mapping of its sums (such as [`ReviewStatistics.summary`]); missing ones are 0, others ignored."""
        return cls.from_list([values.get(f.name, 0) for f in fields(cls)])

    def state_dict(self) -> dict[str, float]:
        return asdict(self)

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        """Restores the sums in place, so that a reviewer holding this object counts on from them."""
        for f in fields(self):
            setattr(self, f.name, f.type(state.get(f.name, 0)))

    @property
    def failed_share(self) -> float | None:
        """Share of reviews without a verdict; `None` before any review."""
        return self.failed / self.reviews if self.reviews else None

    @property
    def p_gain_mean(self) -> float | None:
        return self.p_gain_sum / self.scored if self.scored else None

    @property
    def p_gain_std(self) -> float | None:
        """Population standard deviation of P(gain) over scored reviews."""
        if not self.scored:
            return None
        mean = self.p_gain_sum / self.scored
        return math.sqrt(max(0.0, self.p_gain_sum_of_squares / self.scored - mean**2))

    @property
    def agreement(self) -> float | None:
        """Share of compared reviews that agree with the reference; `None` without any."""
        return self.agreed / self.compared if self.compared else None

    def hardly_varies(self, min_reviews: int = MIN_REVIEWS_FOR_SPREAD, min_spread: float = MIN_SPREAD) -> bool:
        """Whether P(gain) has a standard deviation below `min_spread` over at least `min_reviews` scored reviews."""
        return self.scored >= min_reviews and self.p_gain_std < min_spread

    def summary(self) -> dict[str, float | None]:
        """The sums, then `failed_share`, `p_gain_mean`, `p_gain_std` and `agreement` (`None` where undefined)."""
        return {
            **asdict(self),
            "failed_share": self.failed_share,
            "p_gain_mean": self.p_gain_mean,
            "p_gain_std": self.p_gain_std,
            "agreement": self.agreement,
        }

    def metrics(self, prefix: str = "reviewer/") -> dict[str, float]:
        """What a log reports of these reviews (undefined values left out): the share failed, P's mean and spread."""
        values = {
            "failed_share": self.failed_share,
            "p_gain_mean": self.p_gain_mean,
            "p_gain_std": self.p_gain_std,
            "agreement": self.agreement,
        }
        return {f"{prefix}{key}": value for key, value in values.items() if value is not None}

    def describe(self) -> str:
        """One line for a warning: the spread of P and, when measured, the agreement with the reference."""
        text = f"mean {self.p_gain_mean:.3f}, std {self.p_gain_std:.3f} over {self.scored} reviews"
        if self.agreement is not None:
            text += f"; agreement with the reference reviewer {self.agreement:.2f} over {self.compared}"
        return text
