"""Wilcoxon signed-rank test with R's ``wilcox.test`` conventions made explicit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import norm, rankdata


@dataclass(frozen=True)
class Wilcoxon:
    """``statistic`` V (sum of ranks of positive differences), two-sided ``p_value``, and how it was computed.

    ``n`` counts the non-zero differences used; ``exact`` and ``correct`` say which p-value was
    computed; ``note`` explains a fallback (ties or zeros prevent the exact test), else "".
    ``near_ties``: how many |differences| are ranked apart although they agree to 12 significant digits
    (floating-point near-ties, e.g. differences of means k/50); 0 when ``digits_rank`` ranks them as ties.
    """

    statistic: float
    p_value: float
    n: int
    exact: bool
    correct: bool
    note: str = ""
    near_ties: int = 0

    @property
    def method(self) -> str:
        if self.exact:
            return "exact"
        return "normal, continuity corrected" if self.correct else "normal"


@lru_cache(maxsize=64)
def _signrank_cdf(n: int) -> np.ndarray:
    """Cumulative distribution of V for n untied non-zero differences (P(V <= v), v = 0..n(n+1)/2)."""
    top = n * (n + 1) // 2
    prob = np.zeros(top + 1)
    prob[0] = 1.0
    for k in range(1, n + 1):        # add rank k with sign + or - (probability 1/2 each)
        shifted = np.zeros_like(prob)
        shifted[k:] = prob[:-k]
        prob = (prob + shifted) / 2.0
    return np.minimum(np.cumsum(prob), 1.0)


def signif(x, digits: int) -> np.ndarray:
    """Round to ``digits`` significant digits (R ``signif``).

    Parameters
    ----------
    x : array-like
    digits : int

    Returns
    -------
    numpy.ndarray

    References
    ----------
    R Core Team. ``?signif`` (R documentation, base package).

    Examples
    --------
    >>> signif([123.456, 0.0012345], 3).tolist()
    [123.0, 0.00123]
    """
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        mag = np.floor(np.log10(np.abs(x)))
    scale = 10.0 ** (digits - 1 - np.where(np.isfinite(mag), mag, 0))
    return np.round(x * scale) / scale


#: significant digits at which two |differences| count as a floating-point near-tie (for the warning)
NEAR_TIE_DIGITS = 12


def wilcoxon_signed_rank(x, y=None, *, mu: float = 0.0, correct: bool = True,
                         exact: bool | str = "auto", digits_rank: int | None = None) -> Wilcoxon:
    """Two-sided Wilcoxon signed-rank test of ``x - y`` (or ``x``) against ``mu``, as R ``wilcox.test``.

    Zero differences are dropped and ranks of |d| use mid-ranks for ties. ``exact="auto"`` uses the
    exact null distribution when fewer than 50 differences remain and there are no ties or zeros
    (R's default); ``exact=True`` asks for it but, as in R, falls back to the normal approximation
    (with a ``note``) when ties or zeros exist. The normal approximation uses the tie-corrected
    variance ``n(n+1)(2n+1)/24 - sum(t^3 - t)/48`` and, when ``correct`` (R default TRUE; scipy's
    default is no correction), a continuity correction of 0.5 towards the mean. NaN pairs are
    dropped; with no non-zero difference the p-value is NaN.

    Ties are exact equalities by default, as in R: differences such as ``6 - 5.02`` and ``5 - 4.02`` that
    differ only in the last bits are ranked apart, which can move V by 0.5-1. ``digits_rank`` (R
    ``wilcox.test(digits.rank =)``, R >= 4.0) ranks ``signif(|d|, digits_rank)`` instead, so such
    near-ties become ties (zeros are still exact zeros, as in R). The result counts the near-ties it
    ranked apart (``near_ties``).

    Parameters
    ----------
    x : array-like
        First sample, or the differences when ``y`` is None.
    y : array-like, optional
        Second sample (paired with ``x``).
    mu : float
        Location under the null.
    correct : bool
        Continuity correction of the normal approximation.
    exact : bool or "auto"
    digits_rank : int, optional
        Significant digits of |d| for ranking (R ``digits.rank``).

    Returns
    -------
    Wilcoxon
        ``statistic`` (V), ``p_value``, ``n``, ``exact``, ``correct``, ``note``, ``near_ties``.

    References
    ----------
    Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics Bulletin, 1, 80-83.
    Hollander, M., & Wolfe, D. A. (1973). Nonparametric Statistical Methods. Wiley, pp. 27-33.

    Examples
    --------
    Hollander & Wolfe (1973), p. 29 (depression scale before and after; R's ``?wilcox.test`` example):

    >>> x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    >>> y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    >>> w = wilcoxon_signed_rank(x, y)
    >>> w.statistic, round(w.p_value, 5), w.method
    (40.0, 0.03906, 'exact')
    """
    d = np.asarray(x, dtype=float)
    if y is not None:
        d = d - np.asarray(y, dtype=float)
    d = d[~np.isnan(d)] - mu
    zeroes = bool(np.any(d == 0))
    d = d[d != 0]
    n = int(d.size)
    if exact not in (True, False, "auto"):
        raise ValueError(f"exact must be true, false or 'auto', got {exact!r}")
    if n == 0:
        return Wilcoxon(math.nan, math.nan, 0, False, correct, "no non-zero differences")
    ad = np.abs(d) if digits_rank is None else signif(np.abs(d), digits_rank)
    r = rankdata(ad)
    v = float(r[d > 0].sum())
    ties = len(np.unique(ad)) < n
    near = len(np.unique(ad)) - len(np.unique(signif(ad, NEAR_TIE_DIGITS)))
    want_exact = (n < 50) if exact == "auto" else bool(exact)
    note = ""
    if want_exact and not ties and not zeroes:
        cdf = _signrank_cdf(n)
        vi = int(round(v))
        if v > n * (n + 1) / 4:
            p = 1.0 - cdf[vi - 1]           # P(V >= v)
        else:
            p = cdf[vi]                      # P(V <= v)
        return Wilcoxon(v, float(min(1.0, 2 * p)), n, True, False, "", near)
    if want_exact:
        note = "exact p-value impossible with " + ("ties and zeros" if ties and zeroes else "ties" if ties else "zeros") \
               + "; normal approximation used"
    _, t = np.unique(r, return_counts=True)
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - np.sum(t ** 3 - t) / 48)
    z = v - n * (n + 1) / 4
    if sigma == 0:
        return Wilcoxon(v, math.nan, n, False, correct, note, near)
    corr = math.copysign(0.5, z) if (correct and z != 0) else 0.0
    z = (z - corr) / sigma
    p = 2 * min(norm.cdf(z), norm.sf(z))
    return Wilcoxon(v, float(min(1.0, p)), n, False, correct, note, near)
