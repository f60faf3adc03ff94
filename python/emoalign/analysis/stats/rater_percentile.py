"""The machine as one more rater: leave-one-rater-out agreement and the machine's percentile among humans.

For human rater ``j`` and an image ``i`` they rated, the leave-one-out (LOO) target is the mean of the
other raters' ratings of ``i``, ``t_ij = (S_i - x_ij) / (n_i - 1)``. Rater ``j``'s agreement is the
Pearson r and the MAE of their ratings ``x_ij`` against ``t_ij`` over their images; the machine's
agreement *with the same targets on the same images* (its rating ``m_i`` against ``t_ij``) is computed
beside it. Rater by rater the two are paired, so the machine's percentile among the humans is

    percentile = 100 * mean_j ( [machine better than j] + 1/2 [tie] )

(better: higher r, lower MAE), the share of human raters the machine out-agrees with the consensus of
the others. Images with fewer than two human ratings have no LOO target and are left out.

Uncertainty comes from both samples, raters and images: a two-way (pigeonhole) bootstrap draws raters
and images independently with replacement; each replicate recomputes every rater's agreement over the
drawn images (weighted by how often each was drawn) and the percentile and rater means over the drawn
raters (weighted likewise). The leave-one-out targets stay those of the whole panel: recomputing them
from a resampled panel would average duplicated raters, roughly halving the effective number of raters
per image, and bias every replicate's targets (and so r and MAE) towards more noise. Owen (2007) shows
the pigeonhole bootstrap is mildly conservative for crossed random effects. Resampled images also add
noise to each rater's comparison with the machine (a drawn image counts twice, another not at all), which
pulls a percentile's replicates towards 50 while the estimate itself, a mean of per-rater indicators, is
unbiased; but part of that pull is real variability (one machine's noise is shared by every comparison).
The kind therefore reports the hull of the percentile interval and the one recentred on the estimate
(:func:`emoalign.analysis.stats.weighted.hull_percentile_ci`). ``benchmarks/bench_percentile_ci.py`` checks
this over 40 seeds of the paper profile and of a synthetic study whose machine rates exactly as one more
human: the replicates' SD matches the SD of the agreement estimates across seeds (machine r 0.010 vs 0.010)
while resampling raters alone gives a sixth of it (the images dominate the uncertainty); nominal 95%
intervals of the percentiles covered the across-seed mean in 92.5-100% of seeds as the hull, 7.5-97.5% as
plain percentile intervals and 82.5-100% recentred. Where one machine's noise dominates (the synthetic
study) the replicates' SD is about 70% of the sampling SD, so those intervals are somewhat narrow.

References
----------
Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411.
Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13 (percentile interval).
Tae, H., Park, J., & Choi, S. (2026). Do vision language models see emotions like humans? (models are
judged "against the human ceiling"; this places a model among the individual raters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: agreement metrics, and whether a higher value is better
METRICS = {"r": True, "mae": False}


@dataclass(frozen=True)
class Trials:
    """Human trials as integer codes: ``rater`` (0..J-1), ``image`` (0..I-1), ``rating``; ``machine``: per image."""

    rater: np.ndarray
    image: np.ndarray
    rating: np.ndarray
    machine: np.ndarray

    @classmethod
    def example(cls) -> "Trials":
        """Three raters rating three images (ratings 1..9) and a machine rating each image (2, 5, 8): the data of
        the docstring examples."""
        return cls(rater=np.tile(np.arange(3), 3), image=np.repeat(np.arange(3), 3), rating=np.arange(1.0, 10.0),
                   machine=np.array([2.0, 5.0, 8.0]))

    @property
    def n_raters(self) -> int:
        return int(self.rater.max()) + 1 if self.rater.size else 0

    @property
    def n_images(self) -> int:
        return int(self.machine.size)


def _corr(n, sx, sy, sxx, syy, sxy) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        cxx = np.maximum(sxx - sx * sx / n, 0)
        cyy = np.maximum(syy - sy * sy / n, 0)
        r = (sxy - sx * sy / n) / np.sqrt(cxx * cyy)
        ok = (n >= 3) & (cxx > 1e-12 * sxx) & (cyy > 1e-12 * syy)
    return np.where(ok, np.clip(r, -1, 1), np.nan)


def loo_targets(tr: Trials) -> np.ndarray:
    """The leave-one-out human mean of each trial's image (NaN where the image has one rating).

    Parameters
    ----------
    tr : Trials

    Returns
    -------
    numpy.ndarray
        One target per trial.

    References
    ----------
    Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411 (see the module
    docstring for the leave-one-rater-out design).

    Examples
    --------
    >>> tr = Trials.example()                       # 3 raters x 3 images
    >>> loo_targets(tr).tolist()
    [2.5, 2.0, 1.5, 5.5, 5.0, 4.5, 8.5, 8.0, 7.5]
    """
    S = np.bincount(tr.image, weights=tr.rating, minlength=tr.n_images)
    N = np.bincount(tr.image, minlength=tr.n_images).astype(float)
    rest = N[tr.image] - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rest > 0, (S[tr.image] - tr.rating) / rest, np.nan)


def loo_agreement(tr: Trials, W=None) -> dict[str, np.ndarray]:
    """Per-rater agreement with the LOO human mean, each ``B x J``: ``n`` (weighted images), ``r_human``,
    ``r_machine``, ``mae_human``, ``mae_machine`` (NaN where undefined).

    ``W``: ``B x I`` image frequency weights (bootstrap replicates; default one row of ones).

    Parameters
    ----------
    tr : Trials
    W : array-like, shape (B, n images), optional
        Image frequency weights.

    Returns
    -------
    dict of numpy.ndarray, each (B, n raters)

    References
    ----------
    Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411 (see the module
    docstring for the leave-one-rater-out design).

    Examples
    --------
    >>> tr = Trials.example()                       # 3 raters x 3 images
    >>> ag = loo_agreement(tr)
    >>> ag["mae_human"].tolist(), ag["mae_machine"].tolist()
    ([[1.5, 0.0, 1.5]], [[0.5, 0.0, 0.5]])
    """
    import scipy.sparse as sp

    J, I = tr.n_raters, tr.n_images
    W = np.ones((1, I)) if W is None else np.atleast_2d(np.asarray(W, float))
    target = loo_targets(tr)
    ok = np.isfinite(target) & np.isfinite(tr.rating)
    img, rat, x, t, m = tr.image[ok], tr.rater[ok], tr.rating[ok], target[ok], tr.machine[tr.image[ok]]

    def sums(vals):  # B x J: sum over each rater's images of w_i * vals
        Q = sp.csr_matrix((vals, (img, rat)), shape=(I, J))
        return np.asarray((Q.T @ W.T).T)

    n = sums(np.ones_like(x))
    st, stt = sums(t), sums(t * t)
    out = {"n": n}
    for who, val in (("human", x), ("machine", m)):
        s, ss, sxt, sad = sums(val), sums(val * val), sums(val * t), sums(np.abs(val - t))
        out[f"r_{who}"] = _corr(n, s, st, ss, stt, sxt)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"mae_{who}"] = np.where(n > 0, sad / n, np.nan)
    return out


def percentile(agree: dict[str, np.ndarray], metric: str = "r", V=None) -> np.ndarray:
    """The machine's percentile (0-100) among the raters with a defined ``metric``, ties counted half, per row
    (``V``: ``B x J`` rater frequency weights, default ones).

    Parameters
    ----------
    agree : dict
        From :func:`loo_agreement`.
    metric : {"r", "mae"}
    V : array-like, shape (B, n raters), optional
        Rater frequency weights.

    Returns
    -------
    numpy.ndarray, shape (B,)

    References
    ----------
    Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411 (see the module
    docstring for the leave-one-rater-out design).

    Examples
    --------
    >>> tr = Trials.example()                       # 3 raters x 3 images
    >>> ag = loo_agreement(tr)
    >>> float(percentile(ag, "mae")[0]), float(percentile(ag, "r")[0])   # better than 2 raters, tied with 1 by MAE
    (83.33333333333333, 50.0)
    """
    h, m = agree[f"{metric}_human"], agree[f"{metric}_machine"]
    better = (m > h) if METRICS[metric] else (m < h)
    return _weighted_rater_mean(better + 0.5 * (m == h), np.isfinite(h) & np.isfinite(m), V, scale=100)


def rater_mean(agree: dict[str, np.ndarray], key: str, V=None) -> np.ndarray:
    """Mean of a per-rater array over raters where it is defined (weighted by ``V``), per row.

    Parameters
    ----------
    agree : dict
        From :func:`loo_agreement`.
    key : str
        E.g. ``"mae_human"``.
    V : array-like, optional
        Rater frequency weights.

    Returns
    -------
    numpy.ndarray, shape (B,)

    References
    ----------
    Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411 (see the module
    docstring for the leave-one-rater-out design).

    Examples
    --------
    >>> tr = Trials.example()                       # 3 raters x 3 images
    >>> rater_mean(loo_agreement(tr), "mae_human").tolist()
    [1.0]
    """
    a = agree[key]
    return _weighted_rater_mean(a, np.isfinite(a), V)


def _weighted_rater_mean(values: np.ndarray, defined: np.ndarray, V=None, scale: float = 1.0) -> np.ndarray:
    """Per row, ``scale`` times the mean of ``values`` over the raters where ``defined`` and the weight ``V``
    (``B x J``, default ones) is positive, weighted by ``V``; NaN for a row without such a rater."""
    V = np.ones(values.shape) if V is None else np.broadcast_to(np.asarray(V, float), values.shape)
    ok = defined & (V > 0)
    wsum = np.where(ok, V, 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(wsum > 0, scale * np.where(ok, V * values, 0).sum(axis=1) / wsum, np.nan)


#: summary statistics of one (re)sample, computed by :func:`summarise`
SUMMARIES = ("percentile_r", "percentile_mae", "machine_r", "human_r", "machine_mae", "human_mae")


def summarise(agree: dict[str, np.ndarray], V=None) -> dict[str, np.ndarray]:
    """The percentiles and the rater-mean agreements of the machine and the humans (one value per row).

    Parameters
    ----------
    agree : dict
        From :func:`loo_agreement`.
    V : array-like, optional
        Rater frequency weights.

    Returns
    -------
    dict name -> numpy.ndarray
        The statistics of ``SUMMARIES``.

    References
    ----------
    Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411 (see the module
    docstring for the leave-one-rater-out design).

    Examples
    --------
    >>> tr = Trials.example()                       # 3 raters x 3 images
    >>> s = summarise(loo_agreement(tr))
    >>> round(float(s["percentile_mae"][0]), 2), round(float(s["machine_mae"][0]), 3), float(s["human_mae"][0])
    (83.33, 0.333, 1.0)
    """
    return {"percentile_r": percentile(agree, "r", V), "percentile_mae": percentile(agree, "mae", V),
            "machine_r": rater_mean(agree, "r_machine", V), "human_r": rater_mean(agree, "r_human", V),
            "machine_mae": rater_mean(agree, "mae_machine", V), "human_mae": rater_mean(agree, "mae_human", V)}


def pigeonhole_bootstrap(tr: Trials, reps: int, seed=1, chunk: int = 200) -> dict[str, np.ndarray]:
    """``reps`` replicates of :func:`summarise` with raters and images drawn independently with replacement.

    Parameters
    ----------
    tr : Trials
    reps : int
        Replicates.
    seed : int or numpy.random.Generator seed
    chunk : int
        Replicates computed at once.

    Returns
    -------
    dict name -> numpy.ndarray, each (reps,)

    References
    ----------
    Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411 (see the module
    docstring for the leave-one-rater-out design).

    Examples
    --------
    >>> tr = Trials.example()                       # 3 raters x 3 images
    >>> bs = pigeonhole_bootstrap(tr, reps=50, seed=1)
    >>> sorted(bs) == sorted(SUMMARIES), bs["machine_mae"].shape
    (True, (50,))
    """
    from emoalign.analysis.stats.krippendorff import bootstrap_weights

    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {k: [] for k in SUMMARIES}
    for start in range(0, reps, chunk):
        b = min(chunk, reps - start)
        W = bootstrap_weights(tr.n_images, b, rng)
        V = bootstrap_weights(tr.n_raters, b, rng)
        for k, v in summarise(loo_agreement(tr, W), V).items():
            parts[k].append(v)
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
