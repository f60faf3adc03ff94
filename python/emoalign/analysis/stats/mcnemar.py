"""McNemar's test for paired binary outcomes (e.g. two raters' correctness on the same images)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, chi2


@dataclass(frozen=True)
class McNemar:
    """``statistic`` (chi-square, or min(b, c) for the exact test), ``df`` (1; NaN if exact), ``p_value``."""

    statistic: float
    df: float
    p_value: float
    b: int
    c: int
    method: str


def mcnemar_counts(x, y) -> tuple[int, int]:
    """Discordant counts of two paired boolean vectors: ``b`` = x true & y false, ``c`` = x false & y true.

    Parameters
    ----------
    x, y : array-like of bool
        Paired outcomes (e.g. correct or not, for two raters on the same images).

    Returns
    -------
    (b, c) : tuple of int

    References
    ----------
    McNemar, Q. (1947). Psychometrika, 12(2), 153-157.

    Examples
    --------
    >>> mcnemar_counts([1, 1, 0, 1, 0], [1, 0, 0, 0, 1])
    (2, 1)
    """
    x = np.asarray(x, dtype=bool)
    y = np.asarray(y, dtype=bool)
    if x.shape != y.shape:
        raise ValueError("x and y must have the same length")
    return int(np.sum(x & ~y)), int(np.sum(~x & y))


def mcnemar(b: int, c: int, *, correct: bool = True, exact: bool = False) -> McNemar:
    """McNemar's test on the discordant cells ``b`` and ``c`` of a paired 2x2 table.

    Chi-square form: ``(|b - c| - 1)^2 / (b + c)`` with continuity correction (R ``mcnemar.test``
    default ``correct = TRUE``; as in R the correction is skipped when ``b == c``), ``(b - c)^2 /
    (b + c)`` without; 1 df. Exact form: two-sided binomial test of ``b`` out of ``b + c`` at 1/2,
    ``p = min(1, 2 P(X <= min(b, c)))`` (statsmodels ``mcnemar(exact=True)``). With ``b + c == 0``
    the chi-square p-value is NaN (as R) and the exact p-value is 1.

    Parameters
    ----------
    b, c : int
        Discordant counts (:func:`mcnemar_counts`).
    correct : bool
        Continuity correction of the chi-square form.
    exact : bool
        Exact binomial test instead.

    Returns
    -------
    McNemar
        ``statistic``, ``df``, ``p_value``, ``b``, ``c``, ``method``.

    References
    ----------
    McNemar, Q. (1947). Note on the sampling error of the difference between correlated proportions
    or percentages. Psychometrika, 12(2), 153-157. Edwards, A. L. (1948). Note on the "correction
    for continuity" in testing the significance of the difference between correlated proportions.
    Psychometrika, 13, 185-187.

    Examples
    --------
    >>> m = mcnemar(6, 2)                    # R: mcnemar.test(matrix(c(10, 2, 6, 12), 2))
    >>> m.statistic, round(m.p_value, 4), m.method
    (1.125, 0.2888, 'chi-square, continuity corrected')
    """
    b, c = int(b), int(c)
    if exact:
        m = b + c
        p = 1.0 if m == 0 else float(min(1.0, 2 * binom.cdf(min(b, c), m, 0.5)))
        return McNemar(float(min(b, c)), math.nan, p, b, c, "exact binomial")
    m = b + c
    if m == 0:
        return McNemar(math.nan, 1.0, math.nan, b, c, "chi-square")
    if correct and b != c:
        stat = (abs(b - c) - 1) ** 2 / m
        method = "chi-square, continuity corrected"
    else:
        stat = (b - c) ** 2 / m
        method = "chi-square"
    return McNemar(float(stat), 1.0, float(chi2.sf(stat, 1)), b, c, method)


@dataclass(frozen=True)
class CochranQ:
    """Cochran's Q ``statistic``, its ``df`` (k - 1) and ``p_value`` (chi-square), ``n`` subjects, ``k`` conditions."""

    statistic: float
    df: float
    p_value: float
    n: int
    k: int


def cochrans_q(x) -> CochranQ:
    """Cochran's Q test that k paired binary outcomes have the same success probability.

    ``Q = (k - 1) (k sum_j C_j^2 - N^2) / (k N - sum_i R_i^2)`` with column totals ``C_j``, row totals
    ``R_i`` and grand total ``N``; chi-square with ``k - 1`` df under the null (as statsmodels
    ``cochrans_q`` and R ``DescTools::CochranQTest``). Rows whose outcomes are all equal add nothing to
    the statistic. With no such informative row the statistic and p-value are NaN. For ``k = 2`` Q is
    McNemar's statistic without continuity correction.

    Parameters
    ----------
    x : array-like of bool, shape (n, k)
        Outcomes of n subjects (e.g. images) under k conditions (e.g. prompts): correct or not.

    Returns
    -------
    CochranQ
        ``statistic``, ``df``, ``p_value``, ``n``, ``k``.

    References
    ----------
    Cochran, W. G. (1950). The comparison of percentages in matched samples. Biometrika, 37(3/4),
    256-266.

    Examples
    --------
    12 images, 3 prompts (statsmodels ``cochrans_q`` gives the same Q and p):

    >>> x = [[1, 1, 1], [1, 1, 1], [1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 0], [1, 1, 0],
    ...      [1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 0, 0]]
    >>> q = cochrans_q(x)
    >>> round(q.statistic, 3), q.df, round(q.p_value, 4)
    (10.571, 2.0, 0.0051)
    """
    a = np.asarray(x, dtype=float)
    if a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"cochrans_q needs an (n, k >= 2) array, got shape {a.shape}")
    n, k = a.shape
    col, row = a.sum(axis=0), a.sum(axis=1)
    total = float(a.sum())
    denom = k * total - float(np.sum(row ** 2))
    if denom <= 0:
        return CochranQ(math.nan, float(k - 1), math.nan, n, k)
    q = (k - 1) * (k * float(np.sum(col ** 2)) - total ** 2) / denom
    return CochranQ(float(q), float(k - 1), float(chi2.sf(q, k - 1)), n, k)
