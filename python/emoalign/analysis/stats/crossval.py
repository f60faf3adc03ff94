"""Grouped K-fold assignment for held-out (out-of-fold) estimates.

Every item of a group (e.g. all images of one face identity) lands in the same fold, so a model
fitted on the other folds never saw that group: held-out metrics measure generalisation to new
identities, not memorisation of faces already seen.

References
----------
Hastie, T., Tibshirani, R., & Friedman, J. (2009). The Elements of Statistical Learning (2nd ed.),
§7.10 (cross-validation; §7.10.2 on doing it the right way: every step fitted inside the folds).
Roberts, D. R. et al. (2017). Cross-validation strategies for data with temporal, spatial,
hierarchical, or phylogenetic structure. Ecography, 40(8), 913-929 (blocked/grouped folds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def grouped_folds(groups, k: int, seed: int = 1) -> np.ndarray:
    """Fold index ``0..k-1`` per item such that all items of a group share one fold.

    Groups are shuffled with ``seed`` and dealt largest first to the fold with the fewest items so
    far (ties to the lowest fold index), which balances fold sizes as sklearn's ``GroupKFold`` does
    while the random order keeps the assignment from following the data's sort order. A missing
    group value (None/NaN) makes the item a group of its own.

    Parameters
    ----------
    groups : array-like
        One group key per item.
    k : int
        Number of folds (>= 2 and <= the number of groups).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    numpy.ndarray of int
        The fold of each item.

    References
    ----------
    Hastie, T., Tibshirani, R., & Friedman, J. (2009). The Elements of Statistical Learning (2nd ed.), §7.10.
    Roberts, D. R. et al. (2017). Ecography, 40(8), 913-929 (grouped folds).

    Examples
    --------
    >>> folds = grouped_folds(["a", "a", "b", "b", "c", "d"], k=2, seed=1)
    >>> folds.tolist(), bool(folds[0] == folds[1] and folds[2] == folds[3])
    ([0, 0, 1, 1, 0, 1], True)
    """
    keys = pd.Series(np.asarray(groups, dtype=object))
    missing = keys.isna().to_numpy()
    keys = keys.astype(str)
    keys[missing] = [f"\x00item{i}" for i in np.flatnonzero(missing)]  # each ungrouped item alone
    codes, uniques = pd.factorize(keys, sort=True)
    n_groups = len(uniques)
    if k < 2:
        raise ValueError(f"need at least 2 folds, got {k}")
    if n_groups < k:
        raise ValueError(f"{k} folds need at least {k} groups, got {n_groups}")
    sizes = np.bincount(codes, minlength=n_groups)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]  # largest first, random among equal sizes
    fold_of_group = np.empty(n_groups, dtype=int)
    load = np.zeros(k, dtype=int)
    for g in order:
        f = int(np.argmin(load))
        fold_of_group[g] = f
        load[f] += sizes[g]
    return fold_of_group[codes]
