"""Confidence interval for a binomial proportion."""

from __future__ import annotations

import math

from scipy.stats import norm


def wilson_ci(successes: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion, without continuity correction.

    Parameters
    ----------
    successes, n : int
        Number of successes and of trials.
    conf_level : float
        Two-sided confidence level.

    Returns
    -------
    (low, high) : tuple of float
        NaN, NaN when ``n == 0``. Equals R ``prop.test(x, n, correct = FALSE)$conf.int`` and
        ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.

    References
    ----------
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
    JASA, 22(158), 209-212. Newcombe, R. G. (1998). Two-sided confidence intervals for the single
    proportion: comparison of seven methods. Statistics in Medicine, 17, 857-872 (method 3).

    Examples
    --------
    >>> [round(x, 4) for x in wilson_ci(7, 10)]     # R: prop.test(7, 10, correct = FALSE)$conf.int
    [0.3968, 0.8922]
    """
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n]; got {successes} of {n}")
    z = norm.ppf(1 - (1 - conf_level) / 2)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
