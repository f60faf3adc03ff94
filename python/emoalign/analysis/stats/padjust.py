"""Multiple-comparison adjustment of p-values, a port of R's ``stats::p.adjust``."""

from __future__ import annotations

from typing import Literal

import numpy as np

AdjustMethod = Literal["bonferroni", "holm", "hochberg", "BH", "BY", "none"]
ADJUST_METHODS: tuple[str, ...] = ("bonferroni", "holm", "hochberg", "BH", "BY", "none")
_ALIASES = {"fdr": "BH", "bh": "BH", "by": "BY"}


def p_adjust(p, method: str = "holm", n: int | None = None) -> np.ndarray:
    """Adjust p-values for multiple comparisons exactly as R ``p.adjust(p, method, n)``.

    Parameters
    ----------
    p : array-like of float
        Raw p-values; NaNs are kept as NaN and do not count towards ``n``.
    method : {"bonferroni", "holm", "hochberg", "BH", "BY", "none"}
        ``"fdr"`` is an alias of ``"BH"`` (as in R).
    n : int, optional
        Number of comparisons in the family (default: the number of non-NaN p-values). A larger
        ``n`` adjusts for comparisons not passed in, e.g. a family of 18 tests split over several
        analyses. Must be at least the number of non-NaN p-values.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand J Stat, 6, 65-70.
    Hochberg, Y. (1988). A sharper Bonferroni procedure. Biometrika, 75, 800-803.
    Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B, 57, 289-300.
    Benjamini, Y., & Yekutieli, D. (2001). The control of the false discovery rate in multiple
    testing under dependency. Annals of Statistics, 29, 1165-1188.

    Examples
    --------
    >>> p_adjust([0.01, 0.02, 0.03, 0.04], "holm").tolist()       # R: p.adjust(c(.01, .02, .03, .04), "holm")
    [0.04, 0.06, 0.06, 0.06]
    >>> p_adjust([0.01, 0.02, 0.03, 0.04], "BH").tolist()
    [0.04, 0.04, 0.04, 0.04]
    """
    method = _ALIASES.get(method, method)
    if method not in ADJUST_METHODS:
        raise ValueError(f"unknown p-value adjustment {method!r}; use one of {', '.join(ADJUST_METHODS)}")
    p0 = np.asarray(p, dtype=float).copy()
    ok = ~np.isnan(p0)
    pv = p0[ok]
    lp = pv.size
    n = lp if n is None else int(n)
    if n < lp:
        raise ValueError(f"n ({n}) must be at least the number of p-values ({lp})")
    if n <= 1 or lp == 0 or method == "none":
        return p0
    if method == "bonferroni":
        adj = np.minimum(1.0, n * pv)
    elif method == "holm":
        o = np.argsort(pv, kind="stable")
        i = np.arange(1, lp + 1)
        adj = np.empty(lp)
        adj[o] = np.minimum(1.0, np.maximum.accumulate((n + 1 - i) * pv[o]))
    else:
        o = np.argsort(-pv, kind="stable")
        i = np.arange(lp, 0, -1)
        if method == "hochberg":
            factor = n + 1 - i
        elif method == "BH":
            factor = n / i
        else:  # BY
            factor = np.sum(1.0 / np.arange(1, n + 1)) * n / i
        adj = np.empty(lp)
        adj[o] = np.minimum(1.0, np.minimum.accumulate(factor * pv[o]))
    p0[ok] = adj
    return p0
