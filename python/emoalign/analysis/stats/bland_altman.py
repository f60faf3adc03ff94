"""Bland-Altman agreement between two measurement methods."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as t_dist


@dataclass(frozen=True)
class BlandAltman:
    """Bias (mean of ``a - b``), SD of the differences, limits of agreement, and their CIs."""

    bias: float
    sd: float
    loa_low: float
    loa_high: float
    bias_se: float
    bias_conf_low: float
    bias_conf_high: float
    loa_se: float
    loa_low_conf: tuple[float, float]
    loa_high_conf: tuple[float, float]
    n: int


def bland_altman(a, b, z: float = 1.96, conf_level: float = 0.95) -> BlandAltman:
    """Bland-Altman analysis of paired measurements; differences are ``a - b``.

    bias = mean(d); sd = SD(d) (n - 1 denominator); limits of agreement = bias -/+ z sd.
    The bias CI is bias -/+ t(n-1) sd/sqrt(n); each limit has the approximate standard error
    sqrt(3 sd^2 / n) and CI limit -/+ t(n-1) se (Bland & Altman 1986, section 5). Pairs with a NaN
    are dropped. With fewer than 2 pairs everything but ``bias`` is NaN.

    Parameters
    ----------
    a, b : array-like
        The two methods (e.g. machine and human mean); ``a - b`` is the difference (machine - human).
    z : float
        Multiplier of the SD for the limits (1.96; Bland & Altman 1986 used 2 in their example).
    conf_level : float
        Level of the t-based confidence intervals.

    Returns
    -------
    BlandAltman
        ``bias``, ``sd``, ``loa_low``, ``loa_high``, the bias's ``bias_se`` and t interval ``bias_conf_low/high``,
        the limits' ``loa_se`` and intervals ``loa_low_conf``/``loa_high_conf``, and ``n`` pairs.

    References
    ----------
    Bland, J. M., & Altman, D. G. (1986). Statistical methods for assessing agreement between two
    methods of clinical measurement. The Lancet, 327(8476), 307-310.

    Examples
    --------
    >>> ba = bland_altman([10.2, 9.8, 11.0, 10.5, 9.9], [10.0, 10.0, 10.4, 10.1, 10.3])
    >>> round(ba.bias, 2), round(ba.sd, 3), round(ba.loa_low, 3), round(ba.loa_high, 3)
    (0.12, 0.415, -0.693, 0.933)
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    d = a - b
    d = d[~np.isnan(d)]
    n = int(d.size)
    nan = math.nan
    if n == 0:
        return BlandAltman(nan, nan, nan, nan, nan, nan, nan, nan, (nan, nan), (nan, nan), 0)
    bias = float(d.mean())
    if n < 2:
        return BlandAltman(bias, nan, nan, nan, nan, nan, nan, nan, (nan, nan), (nan, nan), n)
    sd = float(d.std(ddof=1))
    lo, hi = bias - z * sd, bias + z * sd
    q = t_dist.ppf(1 - (1 - conf_level) / 2, n - 1)
    se = sd / math.sqrt(n)
    loa_se = math.sqrt(3 * sd * sd / n)
    return BlandAltman(bias, sd, lo, hi, se, bias - q * se, bias + q * se, loa_se,
                       (lo - q * loa_se, lo + q * loa_se), (hi - q * loa_se, hi + q * loa_se), n)
