"""Post-hoc calibration maps of a machine rater's ratings onto the human scale, fitted out of fold.

Three maps ``f`` from a machine rating ``x`` to the human image mean ``y``:

* ``affine``: mean and SD matching, ``f(x) = mean(y) + sd(y) / sd(x) * (x - mean(x))`` (SDs with n - 1):
  Tae, Park & Choi (2026, §5.2) propose it per emotion category to undo the mean shift and the variance
  inflation ("polarity exaggeration") of VLM ratings. It keeps the rank order and makes the calibrated
  ratings' mean and SD those of the humans; it does not shrink towards the mean, so where the machine's
  ratings carry little information about the human mean it inflates noise (a rater with SD near 0 is
  mapped to the constant ``mean(y)``).
* ``linear``: ordinary least squares of ``y`` on ``x``, ``f(x) = a + b x``: the best linear predictor of
  the human mean in squared error (it shrinks by the correlation).
* ``isotonic``: the non-decreasing step function closest to ``y`` in squared error (pool-adjacent-violators,
  ``scipy.optimize.isotonic_regression``), ties in ``x`` pooled to their weighted mean first and new ``x``
  interpolated linearly between the fitted points and clipped at the ends, as sklearn's
  ``IsotonicRegression(out_of_bounds="clip")`` predicts.

:func:`cross_fit` fits a map per group (e.g. per predicted emotion) on the training folds only and
predicts each held-out fold, falling back to the map of all training items for a group with too few.

References
----------
Tae, H., Park, J., & Choi, S. (2026). Do vision language models see emotions like humans? §5.2.
Barlow, R. E., Bartholomew, D. J., Bremner, J. M., & Brunk, H. D. (1972). Statistical Inference under
Order Restrictions. Wiley (pool-adjacent-violators).
Zadrozny, B., & Elkan, C. (2002). Transforming classifier scores into accurate multiclass probability
estimates. KDD '02, 694-699 (isotonic calibration).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Method = Literal["affine", "linear", "isotonic"]
METHODS = ("affine", "linear", "isotonic")


@dataclass(frozen=True)
class CalibrationMap:
    """A fitted map: ``slope``/``intercept`` (affine, linear) or the knots of an isotonic step function."""

    method: str
    n: int
    slope: float = float("nan")
    intercept: float = float("nan")
    x_knots: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y_knots: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if self.method == "isotonic":
            return np.interp(x, self.x_knots, self.y_knots)  # constant beyond the end knots (= clip)
        return self.intercept + self.slope * x


def fit_map(x, y, method: Method) -> CalibrationMap:
    """Fit ``method`` to paired ``x`` (machine) and ``y`` (human) values; pairs with a NaN are dropped.

    A constant ``x`` cannot be scaled: every method then maps to ``mean(y)``. Raises ``ValueError``
    with no pairs or an unknown method.

    Parameters
    ----------
    x, y : array-like
        Machine ratings and the human values they are mapped onto (paired).
    method : {"affine", "linear", "isotonic"}
        The map (module docstring).

    Returns
    -------
    CalibrationMap
        Callable on new machine ratings; ``slope``/``intercept`` (affine, linear) or ``x_knots``/``y_knots``.

    References
    ----------
    Tae, Park & Choi (2026), §5.2 (affine); Barlow et al. (1972) (isotonic); see the module docstring.

    Examples
    --------
    >>> m = fit_map([1, 2, 3, 4], [2, 4, 5, 7], "linear")
    >>> m.slope, m.intercept, float(m(5)[()])
    (1.6, 0.5, 8.5)
    >>> a = fit_map([1, 2, 3, 4], [2, 4, 5, 7], "affine")   # SD ratio as slope: keeps the human SD
    >>> round(a.slope, 4), round(a.intercept, 4)
    (1.6125, 0.4689)
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n == 0:
        raise ValueError("no (machine, human) pairs to fit a calibration map to")
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; use one of {', '.join(METHODS)}")
    if n < 2 or np.ptp(x) == 0:
        return CalibrationMap(method, n, slope=0.0, intercept=float(y.mean()),
                              x_knots=np.array([x.mean() if n else 0.0]), y_knots=np.array([y.mean()]))
    if method == "affine":
        slope = float(y.std(ddof=1) / x.std(ddof=1))
        return CalibrationMap(method, n, slope=slope, intercept=float(y.mean() - slope * x.mean()))
    if method == "linear":
        xc = x - x.mean()
        slope = float(xc @ (y - y.mean()) / (xc @ xc))
        return CalibrationMap(method, n, slope=slope, intercept=float(y.mean() - slope * x.mean()))
    from scipy.optimize import isotonic_regression

    ux, inv = np.unique(x, return_inverse=True)
    w = np.bincount(inv).astype(float)
    ybar = np.bincount(inv, weights=y) / w
    fitted = isotonic_regression(ybar, weights=w, increasing=True).x
    return CalibrationMap(method, n, x_knots=ux, y_knots=np.asarray(fitted, dtype=float))


def cross_fit(x, y, fold, group=None, *, method: Method = "affine", min_group: int = 10,
              on_fit=None) -> tuple[np.ndarray, list[dict]]:
    """Out-of-fold calibrated values: for each fold, maps fitted on the other folds predict it.

    Parameters
    ----------
    x, y : array-like
        Machine ratings and human targets; ``y`` may be NaN (not used for fitting; still predicted).
    fold : array-like of int
        Fold of each item (e.g. from :func:`emoalign.analysis.stats.crossval.grouped_folds`).
    group : array-like, optional
        Map group of each item (e.g. the predicted emotion); None = one global map. Items whose
        group is missing, or whose group has fewer than ``min_group`` training pairs, get the
        fold's global map.
    method : {"affine", "linear", "isotonic"}
    min_group : int
        Fewest training pairs a group needs for a map of its own.
    on_fit : callable, optional
        Called as ``on_fit(fold, group, train_index, test_index)`` before each map is used (tests
        use it to prove that no held-out item is in training).

    Returns
    -------
    (values, maps)
        ``values``: calibrated value per item (NaN where ``x`` is NaN); ``maps``: one dict per fitted
        map (``fold``, ``group`` (None = global), ``n_train``, ``n_test``, ``slope``, ``intercept``,
        ``n_knots``).

    References
    ----------
    Hastie, T., Tibshirani, R., & Friedman, J. (2009). The Elements of Statistical Learning (2nd ed.), §7.10.2.

    Examples
    --------
    >>> values, maps = cross_fit([1, 2, 3, 4, 5, 6], [2, 4, 6, 8, 10, 12], fold=[0, 0, 0, 1, 1, 1], method="linear")
    >>> values.tolist(), [(m["fold"], m["n_train"], m["n_test"]) for m in maps]
    ([2.0, 4.0, 6.0, 8.0, 10.0, 12.0], [(0, 3, 3), (1, 3, 3)])
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    fold = np.asarray(fold)
    grp = None if group is None else np.asarray(group, dtype=object)
    out = np.full(x.shape, np.nan)
    maps: list[dict] = []
    has_pair = ~(np.isnan(x) | np.isnan(y))

    def record(f, g, m: CalibrationMap, train, test):
        if on_fit is not None:
            on_fit(f, g, train, test)
        out[test] = m(x[test])
        maps.append(dict(fold=int(f), group=g, n_train=m.n, n_test=int(len(test)), slope=m.slope,
                         intercept=m.intercept, n_knots=int(len(m.x_knots))))

    for f in np.unique(fold):
        test_mask = (fold == f) & ~np.isnan(x)
        train_mask = (fold != f) & has_pair
        if not test_mask.any():
            continue
        if not train_mask.any():
            raise ValueError(f"fold {f}: no training pairs outside the fold")
        global_map = fit_map(x[train_mask], y[train_mask], method)
        pending = test_mask.copy()
        if grp is not None:
            present = [g for g in dict.fromkeys(grp[test_mask]) if g is not None and g == g]
            for g in present:
                tr = train_mask & (grp == g)
                if tr.sum() < min_group:
                    continue
                te = test_mask & (grp == g)
                record(f, g, fit_map(x[tr], y[tr], method), np.flatnonzero(tr), np.flatnonzero(te))
                pending &= ~te
        if pending.any():
            record(f, None, global_map, np.flatnonzero(train_mask), np.flatnonzero(pending))
    return out, maps
