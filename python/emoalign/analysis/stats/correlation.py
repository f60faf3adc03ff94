"""Pearson correlation with a t test and a Fisher-z confidence interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, t as t_dist


@dataclass(frozen=True)
class Correlation:
    """``estimate`` r, ``statistic`` t, ``df`` = n - 2, two-sided ``p_value``, Fisher-z ``conf_low/high``."""

    estimate: float
    statistic: float
    df: float
    p_value: float
    conf_low: float
    conf_high: float
    n: int


def pearson(x, y, conf_level: float = 0.95) -> Correlation:
    """Pearson's r of paired observations (pairs with a NaN are dropped).

    The test is t = r sqrt(n-2) / sqrt(1-r^2) on n-2 df; the interval is tanh(atanh(r) -/+ z/sqrt(n-3)).
    This matches R ``cor.test`` and ``scipy.stats.pearsonr(...).confidence_interval()``.
    Edge cases: fewer than 3 pairs, or a constant variable, give NaN for everything but ``n``
    (the CI needs n >= 4).

    Parameters
    ----------
    x, y : array-like
        Paired observations.
    conf_level : float
        Level of the Fisher-z interval.

    Returns
    -------
    Correlation
        ``estimate`` (r), ``statistic`` (t), ``df``, ``p_value``, ``conf_low``, ``conf_high``, ``n``.

    References
    ----------
    Fisher, R. A. (1921). On the "probable error" of a coefficient of correlation deduced from a
    small sample. Metron, 1, 3-32.

    Examples
    --------
    >>> r = pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])   # R: cor.test(c(1,2,3,4,5), c(2,1,4,3,5))
    >>> round(r.estimate, 3), round(r.p_value, 4), round(r.conf_low, 4), round(r.conf_high, 4)
    (0.8, 0.1041, -0.2796, 0.9862)
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = int(x.size)
    nan = math.nan
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(nan, nan, n - 2 if n >= 2 else nan, nan, nan, nan, n)
    xc, yc = x - x.mean(), y - y.mean()
    r = float(np.clip((xc @ yc) / math.sqrt((xc @ xc) * (yc @ yc)), -1.0, 1.0))
    df = n - 2
    if abs(r) == 1.0:
        stat, p = math.copysign(math.inf, r), 0.0
    else:
        stat = r * math.sqrt(df / (1 - r * r))
        p = float(2 * t_dist.sf(abs(stat), df))
    if n > 3 and abs(r) < 1:
        z, se = math.atanh(r), 1 / math.sqrt(n - 3)
        q = norm.ppf(1 - (1 - conf_level) / 2)
        lo, hi = math.tanh(z - q * se), math.tanh(z + q * se)
    else:
        lo = hi = (r if abs(r) == 1 else nan)
    return Correlation(r, stat, float(df), p, lo, hi, n)
