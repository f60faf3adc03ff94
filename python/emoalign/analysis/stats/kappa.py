"""Cohen's kappa with the Fleiss-Cohen-Everitt asymptotic standard errors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class Kappa:
    """Kappa ``estimate``; ``std_error`` (non-null, for the CI); ``std_error_null`` (for the z test of
    kappa = 0); ``statistic`` z = kappa / std_error_null; two-sided ``p_value``; Wald CI; ``n`` pairs."""

    estimate: float
    std_error: float
    std_error_null: float
    statistic: float
    p_value: float
    conf_low: float
    conf_high: float
    n: int


def cohen_kappa_table(table, conf_level: float = 0.95) -> Kappa:
    """Cohen's (unweighted) kappa from a square contingency table (rows: rater 1, columns: rater 2).

    kappa = (p_o - p_e) / (1 - p_e). Non-null variance (Fleiss, Cohen & Everitt 1969, eq. 13):
    ``[sum_i p_ii (1 - (p_i. + p_.i)(1 - k))^2 + (1 - k)^2 sum_{i != j} p_ij (p_.i + p_j.)^2
    - (k - p_e (1 - k))^2] / (n (1 - p_e)^2)``; null variance (eq. 14):
    ``[p_e + p_e^2 - sum_i p_i. p_.i (p_i. + p_.i)] / (n (1 - p_e)^2)``. The CI is
    kappa -/+ z std_error. With ``p_e == 1`` (both raters use one category) all values are NaN.

    Parameters
    ----------
    table : array-like, shape (k, k)
        Counts; rows: rater 1's category, columns: rater 2's.
    conf_level : float
        Level of the Wald interval.

    Returns
    -------
    Kappa
        ``estimate``, ``std_error``, ``std_error_null``, ``statistic`` (z), ``p_value``, ``conf_low``, ``conf_high``, ``n``.

    References
    ----------
    Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and Psychological
    Measurement, 20(1), 37-46. Fleiss, J. L., Cohen, J., & Everitt, B. S. (1969). Large sample
    standard errors of kappa and weighted kappa. Psychological Bulletin, 72(5), 323-327.

    Examples
    --------
    >>> k = cohen_kappa_table([[20, 5], [10, 15]])   # p_o = .70, p_e = .50
    >>> round(k.estimate, 3), round(k.std_error, 4), round(k.p_value, 4)
    (0.4, 0.127, 0.0039)
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError(f"kappa needs a square table, got shape {t.shape}")
    n = float(t.sum())
    nan = math.nan
    if n == 0:
        return Kappa(nan, nan, nan, nan, nan, nan, nan, 0)
    p = t / n
    row, col = p.sum(axis=1), p.sum(axis=0)
    po = float(np.trace(p))
    pe = float(row @ col)
    if pe >= 1:
        return Kappa(nan, nan, nan, nan, nan, nan, nan, int(n))
    k = (po - pe) / (1 - pe)
    diag = np.diag(p)
    a = float(np.sum(diag * (1 - (row + col) * (1 - k)) ** 2))
    off = p.copy()
    np.fill_diagonal(off, 0.0)
    b = float((1 - k) ** 2 * np.sum(off * (col[:, None] + row[None, :]) ** 2))
    c = (k - pe * (1 - k)) ** 2
    var = max(a + b - c, 0.0) / (n * (1 - pe) ** 2)
    var0 = (pe + pe ** 2 - float(np.sum(row * col * (row + col)))) / (n * (1 - pe) ** 2)
    se, se0 = math.sqrt(var), math.sqrt(max(var0, 0.0))
    z = k / se0 if se0 > 0 else nan
    p_value = float(2 * norm.sf(abs(z))) if se0 > 0 else nan
    q = norm.ppf(1 - (1 - conf_level) / 2)
    return Kappa(float(k), se, se0, float(z), p_value, float(k - q * se), float(k + q * se), int(n))


def cohen_kappa(y1: Sequence, y2: Sequence, labels: Sequence | None = None, conf_level: float = 0.95) -> Kappa:
    """Cohen's kappa of two label vectors (see :func:`cohen_kappa_table`).

    ``labels`` fixes the categories; values outside them form one extra category, so they count as
    disagreements (e.g. an invalid model answer never matches the intended emotion). Default: the
    union of observed labels. Matches ``sklearn.metrics.cohen_kappa_score`` for the estimate.

    Parameters
    ----------
    y1, y2 : sequence
        The two raters' labels, paired.
    labels : sequence, optional
        The categories (see above).
    conf_level : float
        Level of the Wald interval.

    Returns
    -------
    Kappa
        As :func:`cohen_kappa_table`.

    References
    ----------
    Cohen, J. (1960). Educational and Psychological Measurement, 20(1), 37-46.

    Examples
    --------
    >>> cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]).estimate
    0.5
    """
    y1 = np.asarray(y1, dtype=object)
    y2 = np.asarray(y2, dtype=object)
    if y1.shape != y2.shape:
        raise ValueError("y1 and y2 must have the same length")
    if labels is None:
        labels = sorted({*map(str, y1), *map(str, y2)})
    index = {lab: i for i, lab in enumerate(labels)}
    other = len(labels)
    i1 = np.array([index.get(v, other) for v in y1], dtype=int)
    i2 = np.array([index.get(v, other) for v in y2], dtype=int)
    size = other + 1 if (np.any(i1 == other) or np.any(i2 == other)) else other
    table = np.zeros((size, size))
    np.add.at(table, (i1, i2), 1)
    return cohen_kappa_table(table, conf_level=conf_level)
