"""Frequency-weighted agreement and classification metrics, for bootstrap replicates in one pass.

A nonparametric bootstrap replicate that draws items with replacement is the original data with
integer weights (how often each item was drawn; ``bootstrap_weights``). Every metric here takes a
``B x n`` weight matrix and returns ``B`` values, so 1,000 replicates cost a few matrix products
instead of 1,000 calls. With all weights 1 (``np.ones((1, n))``) each function returns the ordinary
estimate; the tests check that against the package's unweighted functions and sklearn.

References
----------
Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall, ch. 6
(bootstrap standard errors), ch. 10 (bias) and ch. 13 (percentile intervals).
Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and Psychological
Measurement, 20(1), 37-46.
"""

from __future__ import annotations

import numpy as np


def percentile_ci(replicates, level: float = 0.95) -> tuple[float, float, float]:
    """``(conf_low, conf_high, std_error)`` of bootstrap replicates (non-finite ones dropped; NaN when none).

    Parameters
    ----------
    replicates : array-like
    level : float

    Returns
    -------
    (conf_low, conf_high, std_error) : tuple of float

    References
    ----------
    Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13 (percentile intervals).

    Examples
    --------
    >>> import numpy as np
    >>> [round(x, 2) for x in percentile_ci(np.arange(101.0))]
    [2.5, 97.5, 29.3]
    """
    r = np.asarray(replicates, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(r, [a, 1 - a])
    return float(lo), float(hi), float(r.std(ddof=1)) if r.size > 1 else float("nan")


def recentred_percentile_ci(replicates, estimate: float, level: float = 0.95,
                            bounds: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Percentile interval of the replicates shifted to centre on ``estimate``: ``estimate + (q - mean*)``.

    For an unbiased estimate whose bootstrap replicates are shifted by an artefact of resampling, the spread of
    the replicates still estimates the sampling spread while their location does not (the bias-corrected BC
    interval would instead read the shift as a mirror image of a bias of the estimate and move the interval the
    wrong way). ``bounds`` clips the interval to the statistic's range. Returns ``(conf_low, conf_high, std_error)``.

    Parameters
    ----------
    replicates : array-like
    estimate : float
    level : float
    bounds : (low, high), optional

    Returns
    -------
    (conf_low, conf_high, std_error) : tuple of float

    References
    ----------
    Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13 (percentile intervals).

    Examples
    --------
    >>> import numpy as np
    >>> [round(x, 2) for x in recentred_percentile_ci(np.arange(101.0), 40.0)]   # replicates centred on 50
    [-7.5, 87.5, 29.3]
    """
    r = np.asarray(replicates, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = estimate + np.quantile(r, [a, 1 - a]) - r.mean()
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return float(lo), float(hi), float(r.std(ddof=1)) if r.size > 1 else float("nan")


def hull_percentile_ci(replicates, estimate: float, level: float = 0.95,
                       bounds: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """The hull of the percentile interval and the one recentred on ``estimate`` (conservative).

    For a statistic whose replicates are pulled away from the estimate partly by a resampling artefact and
    partly by real sampling variability, neither interval alone is reliable: their hull covers both readings.
    Returns ``(conf_low, conf_high, std_error)``.

    Parameters
    ----------
    replicates : array-like
    estimate : float
    level : float
    bounds : (low, high), optional

    Returns
    -------
    (conf_low, conf_high, std_error) : tuple of float

    References
    ----------
    Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13 (percentile intervals).

    Examples
    --------
    >>> import numpy as np
    >>> [round(x, 2) for x in hull_percentile_ci(np.arange(101.0), 40.0)]
    [-7.5, 97.5, 29.3]
    """
    lo1, hi1, se = percentile_ci(replicates, level)
    lo2, hi2, _ = recentred_percentile_ci(replicates, estimate, level, bounds)
    if not (np.isfinite(lo2) and np.isfinite(hi2)):
        return lo1, hi1, se
    return float(min(lo1, lo2)), float(max(hi1, hi2)), se


def _moments(W: np.ndarray, *cols: np.ndarray) -> list[np.ndarray]:
    return [W @ c for c in cols]


def agreement_replicates(machine, human, W) -> dict[str, np.ndarray]:
    """Agreement of paired ``machine``/``human`` values under each row of weights ``W`` (``B x n``).

    Returns ``mae``, ``rmse``, ``mean_diff`` (machine - human), ``pearson_r`` and ``sd_ratio``
    (machine SD / human SD, both with the frequency-weight n - 1 denominator, so a replicate equals
    the statistic of the resampled data exactly). NaN where undefined (constant values, n < 2).

    Parameters
    ----------
    machine, human : array-like
        Paired values (n).
    W : array-like, shape (B, n)
        Frequency weights.

    Returns
    -------
    dict name -> numpy.ndarray, shape (B,)

    References
    ----------
    Bland, J. M., & Altman, D. G. (1986). The Lancet, 327(8476), 307-310 (bias). Efron & Tibshirani (1993), ch. 6.

    Examples
    --------
    >>> import numpy as np
    >>> a = agreement_replicates([2, 4, 6], [1, 4, 5], np.ones((1, 3)))
    >>> {k: round(float(v[0]), 4) for k, v in a.items()}
    {'mae': 0.6667, 'rmse': 0.8165, 'mean_diff': 0.6667, 'pearson_r': 0.9608, 'sd_ratio': 0.9608}
    """
    m = np.asarray(machine, dtype=float)
    h = np.asarray(human, dtype=float)
    W = np.atleast_2d(np.asarray(W, dtype=float))
    d = m - h
    n, sm, sh, smm, shh, smh, sad, sdd, sd = _moments(W, np.ones_like(m), m, h, m * m, h * h, m * h,
                                                      np.abs(d), d * d, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        cmm, chh, cmh = smm - sm * sm / n, shh - sh * sh / n, smh - sm * sh / n
        cmm, chh = np.maximum(cmm, 0), np.maximum(chh, 0)
        r = cmh / np.sqrt(cmm * chh)
        return {"mae": sad / n, "rmse": np.sqrt(sdd / n), "mean_diff": sd / n,
                "pearson_r": np.where((cmm > 1e-12 * smm) & (chh > 1e-12 * shh), np.clip(r, -1, 1), np.nan),
                "sd_ratio": np.where((n > 1) & (chh > 0), np.sqrt(cmm / np.where(chh > 0, chh, 1)), np.nan)}


def confusion_replicates(true_codes, pred_codes, k: int, W) -> np.ndarray:
    """Weighted confusion matrices ``B x k x k`` (rows: true class, columns: predicted) of integer codes ``0..k-1``.

    Parameters
    ----------
    true_codes, pred_codes : array-like of int
        Class codes ``0..k-1``, paired (n).
    k : int
        Number of classes.
    W : array-like, shape (B, n)
        Frequency weights.

    Returns
    -------
    numpy.ndarray, shape (B, k, k)

    References
    ----------
    Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13 (percentile intervals).

    Examples
    --------
    >>> import numpy as np
    >>> confusion_replicates([0, 0, 1, 1], [0, 1, 1, 1], 2, np.ones((1, 4))).tolist()
    [[[1.0, 1.0], [0.0, 2.0]]]
    """
    t = np.asarray(true_codes, dtype=int)
    p = np.asarray(pred_codes, dtype=int)
    W = np.atleast_2d(np.asarray(W, dtype=float))
    onehot = np.zeros((t.size, k * k))
    onehot[np.arange(t.size), t * k + p] = 1.0
    return (W @ onehot).reshape(-1, k, k)


def confusion_metrics(C) -> dict[str, np.ndarray]:
    """Accuracy, macro-F1, Cohen's kappa and per-class recall/precision/F1 of confusion matrices ``B x k x k``.

    Definitions as :func:`emoalign.analysis.stats.per_class_metrics`, :func:`macro_f1` (mean F1 over the
    classes that occur as a true class or a prediction) and :func:`cohen_kappa_table` (unweighted kappa);
    recall/precision of a class that never occurs (0/0) is NaN.

    Parameters
    ----------
    C : array-like, shape (B, k, k) or (k, k)
        Confusion matrices (rows: true class).

    Returns
    -------
    dict name -> numpy.ndarray
        ``accuracy``, ``macro_f1``, ``cohen_kappa`` (B,); ``recall``, ``precision``, ``f1`` (B, k).

    References
    ----------
    Cohen, J. (1960). Educational and Psychological Measurement, 20(1), 37-46. Sokolova, M., & Lapalme, G. (2009).

    Examples
    --------
    >>> m = confusion_metrics([[1, 1], [0, 2]])
    >>> float(m["accuracy"][0]), round(float(m["macro_f1"][0]), 3), float(m["cohen_kappa"][0])
    (0.75, 0.733, 0.5)
    """
    C = np.asarray(C, dtype=float)
    if C.ndim == 2:
        C = C[None]
    n = C.sum(axis=(1, 2))
    tp = np.diagonal(C, axis1=1, axis2=2)
    rows, cols = C.sum(axis=2), C.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(rows > 0, tp / rows, np.nan)
        precision = np.where(cols > 0, tp / cols, np.nan)
        occurs = (rows + cols) > 0
        f1 = np.where(occurs, 2 * tp / (rows + cols), np.nan)
        n_occ = occurs.sum(axis=1)
        macro = np.where(n_occ > 0, np.where(occurs, f1, 0).sum(axis=1) / np.maximum(n_occ, 1), np.nan)
        po = tp.sum(axis=1) / n
        pe = (rows * cols).sum(axis=1) / (n * n)
        kappa = np.where(pe < 1, (po - pe) / (1 - pe), np.nan)
    return {"accuracy": po, "macro_f1": macro, "cohen_kappa": kappa, "recall": recall, "precision": precision, "f1": f1}
