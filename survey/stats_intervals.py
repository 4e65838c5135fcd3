"""Shares with Wilson score intervals, and their comparison with chance."""

import math
from dataclasses import dataclass
from functools import cache

from scipy.stats import binomtest, norm

# Each comparison shows three posts, so a random pick lands on any one of them
# with probability 1/3.
CHANCE = 1 / 3
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Proportion:
    """A count of successes out of trials, its share and its Wilson score interval.

    ``share``, ``low`` and ``high`` are fractions between 0 and 1, or None when
    there were no trials.
    """

    successes: int
    trials: int
    share: float | None
    low: float | None
    high: float | None

    @property
    def above_chance(self) -> bool:
        """True when the whole interval lies above chance (1/3)."""
        return self.low is not None and self.low > CHANCE

    @property
    def below_chance(self) -> bool:
        """True when the whole interval lies below chance (1/3)."""
        return self.high is not None and self.high < CHANCE


def wilson_interval(
    successes: int, trials: int, *, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Return the Wilson score interval of ``successes`` out of ``trials``, without
    continuity correction.

    Unlike the normal-approximation interval it stays within [0, 1] and keeps a
    sensible width at a share of 0 or 1 and at small counts. Raises ValueError
    when there are no trials or the counts are inconsistent.
    """
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}, got {successes}")
    z = _normal_quantile(1 - (1 - confidence) / 2)
    share = successes / trials
    denominator = 1 + z * z / trials
    center = (share + z * z / (2 * trials)) / denominator
    half_width = (
        z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    )
    return max(0.0, center - half_width), min(1.0, center + half_width)


@cache
def _normal_quantile(probability: float) -> float:
    # A scipy call per interval costs tens of microseconds, and a results page
    # computes hundreds of intervals at the same confidence.
    return float(norm.ppf(probability))


def proportion(successes: int, trials: int) -> Proportion:
    if trials == 0:
        return Proportion(successes=0, trials=0, share=None, low=None, high=None)
    low, high = wilson_interval(successes, trials)
    return Proportion(
        successes=successes, trials=trials, share=successes / trials, low=low, high=high
    )


def chance_p_value(successes: int, trials: int) -> float | None:
    """Return the two-sided exact binomial p-value of the share against chance (1/3)."""
    if trials == 0:
        return None
    return float(binomtest(successes, trials, CHANCE).pvalue)
