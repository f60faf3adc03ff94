"""Krippendorff's alpha and its bootstrap over units, coders or both (a two-way bootstrap of a crossed design).

Alpha is computed from the unit x value count matrix ``N`` of the pairable units (at least two values).
Every level of measurement reduces to per-unit sums, so a bootstrap replicate is a weighted sum with no
V x V matrix except for the ratio metric:

* coincidence marginals ``n_c = sum_u k_u N_uc``, ``n = sum_c n_c`` (``k_u``: how often unit u was drawn);
* the observed disagreement of unit u is ``P_u / ((m_u^2 - s_u) / m_u)`` with ``P_u = sum_{i,j} c_i c_j
  d(x_iu, x_ju)`` over the unit's values (``c_i``: how often value i's coder was drawn), ``m_u = sum c_i``
  and ``s_u = sum c_i^2``. With every ``c_i = 1`` the divisor is Krippendorff's ``m_u - 1``. A coder drawn
  twice contributes two copies of its values; pairs of copies (distance 0, carrying no information about
  disagreement) are left out of the pair count ``m_u^2 - s_u``, so the copies do not inflate agreement;
* interval: ``P_u = 2 m_u S2_u - 2 S1_u^2`` with ``S1_u = sum c_i x_i``, ``S2_u = sum c_i x_i^2``, and
  ``sum n_c n_k d = 2 n sum n_c x_c^2 - 2 (sum n_c x_c)^2``;
* ordinal: Krippendorff's ordinal distance ``(sum_{g=c..k} n_g - (n_c+n_k)/2)^2`` equals ``(M_k - M_c)^2``
  with the mid-ranks ``M_c = sum_{g<=c} n_g - n_c/2``, i.e. the interval formula on mid-ranks recomputed
  from each replicate's marginals;
* nominal: ``P_u = m_u^2 - sum_c N_uc^2``, ``sum n_c n_k d = n^2 - sum n_c^2``;
* ratio: ``d_ck = ((c-k)/(c+k))^2`` with a dense V x V matrix;

and ``alpha = 1 - (n-1) sum_u D_u / sum n_c n_k d``. Units left with fewer than two distinct coders in a
replicate are not pairable there and drop out of it entirely (as in Krippendorff's definition). On the
original data this equals ``krippendorff.alpha`` (tested to 1e-10).

What the bootstrap resamples (``resample``):

* ``units``: units (images) with replacement, coders fixed -- the nonparametric case bootstrap of the
  units (Efron & Tibshirani 1993, ch. 6; as used for alpha by Zapf et al. 2016). Its interval reflects
  which images were sampled, not which raters: too narrow when rater differences dominate.
* ``coders``: coders (raters) with replacement, units fixed.
* ``both``: units and coders independently with replacement, every value weighted by the product of
  its unit's and its coder's multiplicities -- the pigeonhole bootstrap of a crossed random-effects design
  (Owen 2007), which is mildly conservative for such designs (McCullagh 2000).

The interval is read off the replicates as the percentile interval or the bias-corrected percentile
interval (``bc``). Alpha is biased downwards when few raters or units are sampled (the expected
disagreement counts pairs that share a rater or a unit); on simulated crossed studies with known
population alpha, ``both`` with ``bc`` covers at the nominal level, ``both`` with percentiles slightly
below it, and ``units`` far below it when rater variance dominates (tests/test_reliability.py).

This is not the bootstrap of Hayes & Krippendorff (2007) / Krippendorff's KALPHA macro, which resamples
pairs of values from the observed coincidence matrix and holds the expected disagreement fixed
(Krippendorff 2006/2011, "Algorithm for bootstrapping a distribution of alpha").

References
----------
Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication,
University of Pennsylvania. https://repository.upenn.edu/asc_papers/43
Krippendorff, K. (2004). Content Analysis: An Introduction to Its Methodology (2nd ed.), ch. 11.
Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall (ch. 6; ch. 13,
percentile intervals; section 14.3, bias-corrected intervals).
Efron, B. (1981). Nonparametric standard errors and confidence intervals. Canadian Journal of Statistics,
9(2), 139-158.
Zapf, A., Castell, S., Morawietz, L., & Karch, A. (2016). Measuring inter-rater reliability for nominal
data -- which coefficients and confidence intervals are appropriate? BMC Medical Research Methodology,
16, 93.
Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411.
McCullagh, P. (2000). Resampling and exchangeable arrays. Bernoulli, 6(2), 285-301.
Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a standard reliability measure for coding
data. Communication Methods and Measures, 1(1), 77-89.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import norm

from emoalign.errors import EmoalignError

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Resample = Literal["units", "coders", "both"]
CiMethod = Literal["percentile", "bc"]
RESAMPLE_METHODS = ("units", "coders", "both")
#: one-line description of each resampling scheme (results column ``resample`` names the scheme)
RESAMPLE_TEXT = {
    "units": "bootstrap over units (images), coders fixed",
    "coders": "bootstrap over coders (raters), units fixed",
    "both": "bootstrap over units and coders independently (two-way pigeonhole bootstrap)",
}
CI_TEXT = {"percentile": "percentile interval", "bc": "bias-corrected percentile interval"}


@dataclass(frozen=True)
class AlphaData:
    """The pairable units (>= 2 values) of long reliability data.

    ``counts``: unit x value counts; ``values``: the sorted value domain; ``m``: values per unit;
    ``units``: unit labels; ``obs_unit``, ``obs_value``, ``obs_coder``: one entry per value (indices into
    units, values and ``coders``); ``coders``: coder labels (None when no coder ids were given).
    """

    counts: sp.csr_matrix
    values: np.ndarray
    m: np.ndarray
    units: np.ndarray
    obs_unit: np.ndarray
    obs_value: np.ndarray
    obs_coder: np.ndarray
    coders: np.ndarray | None

    @property
    def n_units(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_coders(self) -> int:
        return 0 if self.coders is None else len(self.coders)


def krippendorff_2011() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The worked example of Krippendorff (2011), section C, in long form: ``(units, coders, values)`` of 4
    observers x 12 units with missing values (NaN). Published alphas: nominal .743, ordinal .815, interval
    .849, ratio .797 (the docstring examples of this module use it).

    Returns
    -------
    (units, coders, values) : tuple of numpy.ndarray
        48 entries each; 7 values are NaN (not coded).

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication
    Departmental Papers 43, section C.

    Examples
    --------
    >>> units, coders, values = krippendorff_2011()
    >>> len(values), int((values == values).sum())
    (48, 41)
    """
    nan = np.nan
    k = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
                  [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]])
    return np.tile(np.arange(12), 4), np.repeat(np.arange(4), 12), k.ravel()


def alpha_data(units, values, coders=None) -> AlphaData:
    """Build :class:`AlphaData` from long arrays (one entry per coder x unit value; NaN dropped).

    Parameters
    ----------
    units, values : array-like
        Unit (image) and value of each rating; NaN values are dropped.
    coders : array-like, optional
        Coder (rater) of each rating, needed to resample coders.

    Returns
    -------
    AlphaData
        Only units with at least two values (the pairable ones).

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication
    Departmental Papers 43.

    Examples
    --------
    >>> import numpy as np
    >>> units, coders, values = krippendorff_2011()       # the published worked example
    >>> d = alpha_data(units, values, coders)
    >>> d.n_units, d.n_coders, d.values.tolist(), int(d.m.sum())
    (11, 4, [1.0, 2.0, 3.0, 4.0, 5.0], 40)
    """
    units = np.asarray(units)
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    units, values = units[keep], values[keep]
    coders = None if coders is None else np.asarray(coders)[keep]
    ucodes, uniq_units = pd.factorize(units, sort=False)
    domain, vcodes = np.unique(values, return_inverse=True)
    m_all = np.bincount(ucodes, minlength=len(uniq_units))
    pairable = m_all >= 2
    new_index = np.cumsum(pairable) - 1
    obs = pairable[ucodes]
    obs_unit, obs_value = new_index[ucodes[obs]], vcodes[obs]
    if coders is None:
        obs_coder, coder_labels = np.arange(int(obs.sum())), None
    else:
        obs_coder, coder_labels = pd.factorize(coders[obs], sort=False)
        coder_labels = np.asarray(coder_labels)
    n_units = int(pairable.sum())
    counts = sp.coo_matrix((np.ones(len(obs_unit)), (obs_unit, obs_value)),
                           shape=(n_units, len(domain))).tocsr()
    return AlphaData(counts=counts, values=domain, m=m_all[pairable].astype(float),
                     units=np.asarray(uniq_units)[pairable], obs_unit=obs_unit, obs_value=obs_value,
                     obs_coder=np.asarray(obs_coder), coders=coder_labels)


def _ratio_distance(v: np.ndarray) -> np.ndarray:
    s = v[:, None] + v[None, :]
    return np.divide(v[:, None] - v[None, :], s, out=np.zeros_like(s), where=s != 0) ** 2


def _unknown_level(level) -> EmoalignError:
    return EmoalignError(f"unknown level of measurement {level!r}", hint="use nominal, ordinal, interval or ratio")


def alpha_weighted(data: AlphaData, weights: np.ndarray, level: Level) -> np.ndarray:
    """Alpha for each row of ``weights`` (B x U unit weights; ones = the original data), coders fixed.

    Parameters
    ----------
    data : AlphaData
    weights : array-like, shape (B, n units)
        Unit frequency weights (bootstrap replicates; a row of ones gives alpha itself).
    level : {"nominal", "ordinal", "interval", "ratio"}
        Level of measurement (the distance metric).

    Returns
    -------
    numpy.ndarray, shape (B,)

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication
    Departmental Papers 43.

    Examples
    --------
    >>> import numpy as np
    >>> units, coders, values = krippendorff_2011()       # the published worked example
    >>> d = alpha_data(units, values)
    >>> np.round(alpha_weighted(d, np.ones((1, d.n_units)), "nominal"), 3).tolist()   # published: 0.743
    [0.743]
    """
    W = np.atleast_2d(np.asarray(weights, dtype=float))
    N = data.counts
    m = data.m
    A = W / (m - 1)[None, :]
    nc = np.asarray((N.T @ W.T).T)  # B x V coincidence marginals
    n = nc.sum(axis=1)
    if level == "interval":
        x = data.values - np.average(data.values, weights=np.asarray(N.sum(axis=0)).ravel())
        s1 = N @ x
        s2 = N @ (x * x)
        obs = A @ (2 * m * s2 - 2 * s1 ** 2)
        exp = 2 * n * (nc @ (x * x)) - 2 * (nc @ x) ** 2
    elif level == "ordinal":
        M = np.cumsum(nc, axis=1) - nc / 2 - n[:, None] / 2  # mid-ranks, centred for precision
        s1 = np.asarray(N @ M.T)  # U x B
        s2 = np.asarray(N @ (M * M).T)
        obs = np.einsum("bu,ub->b", A, 2 * m[:, None] * s2 - 2 * s1 ** 2)
        exp = 2 * n * (nc * M * M).sum(axis=1) - 2 * (nc * M).sum(axis=1) ** 2
    elif level == "nominal":
        sq = np.asarray(N.multiply(N).sum(axis=1)).ravel()
        obs = A @ (m * m - sq)
        exp = n * n - (nc * nc).sum(axis=1)
    elif level == "ratio":
        D = _ratio_distance(data.values)
        per_unit = np.asarray(N.multiply(N @ D).sum(axis=1)).ravel()
        obs = A @ per_unit
        exp = ((nc @ D) * nc).sum(axis=1)
    else:
        raise _unknown_level(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (n - 1) * obs / exp


def alpha_two_way(data: AlphaData, coder_weights: np.ndarray, level: Level,
                  unit_weights: np.ndarray | None = None) -> np.ndarray:
    """Alpha for each replicate of coder weights (B x J) and, optionally, unit weights (B x U).

    Copies of a coder drawn more than once are not paired with each other (see the module docstring);
    with all coder weights 1 this equals :func:`alpha_weighted`.

    Parameters
    ----------
    data : AlphaData
        Built with ``coders``.
    coder_weights : array-like, shape (B, n coders)
        Coder frequency weights.
    level : {"nominal", "ordinal", "interval", "ratio"}
    unit_weights : array-like, shape (B, n units), optional
        Unit frequency weights (the two-way bootstrap draws both).

    Returns
    -------
    numpy.ndarray, shape (B,)

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication
    Departmental Papers 43.
    Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411.

    Examples
    --------
    >>> import numpy as np
    >>> units, coders, values = krippendorff_2011()       # the published worked example
    >>> d = alpha_data(units, values, coders)
    >>> np.round(alpha_two_way(d, np.ones((1, 4)), "nominal"), 3).tolist()   # all coders once: alpha itself
    [0.743]
    """
    C = np.atleast_2d(np.asarray(coder_weights, dtype=float)).T  # J x B
    B, n_obs, U, V, J = C.shape[1], len(data.obs_unit), data.n_units, len(data.values), data.n_coders
    ones = np.ones(n_obs)
    # cells: distinct (unit, value) pairs, sorted by unit; cellw = weighted count of each cell
    cell_id, cell_of_obs = np.unique(data.obs_unit * V + data.obs_value, return_inverse=True)
    cell_u, cell_v = cell_id // V, cell_id % V
    n_cells = len(cell_id)
    starts = np.flatnonzero(np.r_[True, cell_u[1:] != cell_u[:-1]])  # every pairable unit has cells

    def per_unit(x):  # sum over each unit's cells (K x B -> U x B)
        return np.add.reduceat(x, starts, axis=0)

    cellw = np.asarray(sp.csr_matrix((ones, (cell_of_obs, data.obs_coder)), shape=(n_cells, J)) @ C)  # K x B
    m = per_unit(cellw)  # U x B: weighted values per unit
    unit_coder = sp.csr_matrix((ones, (data.obs_unit, data.obs_coder)), shape=(U, J))
    pairs = m * m - np.asarray(unit_coder @ (C * C))  # ordered pairs of values of distinct coders
    k = np.ones((U, B)) if unit_weights is None else np.atleast_2d(np.asarray(unit_weights, dtype=float)).T
    k = np.where(pairs > 0, k, 0.0)  # a unit with < 2 distinct coders left is not pairable in this replicate
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(k > 0, k * m / pairs, 0.0)  # unit weight / Krippendorff's (m_u - 1)
    kc = k[cell_u]  # K x B
    nc = np.asarray(sp.csr_matrix((np.ones(n_cells), (cell_v, np.arange(n_cells))), shape=(V, n_cells))
                    @ (kc * cellw)).T  # B x V
    n = nc.sum(axis=1)
    if level in ("interval", "ordinal"):
        if level == "interval":
            x = data.values - np.average(data.values, weights=np.bincount(data.obs_value, minlength=V))
            xc = x[cell_v][:, None]
            exp = 2 * n * (nc @ (x * x)) - 2 * (nc @ x) ** 2
        else:
            M = np.cumsum(nc, axis=1) - nc / 2 - n[:, None] / 2  # B x V mid-ranks, centred
            xc = M.T[cell_v]  # K x B
            exp = 2 * n * (nc * M * M).sum(axis=1) - 2 * (nc * M).sum(axis=1) ** 2
        wx = cellw * xc
        P = 2 * m * per_unit(wx * xc) - 2 * per_unit(wx) ** 2
    elif level == "nominal":
        P = m * m - per_unit(cellw * cellw)
        exp = n * n - (nc * nc).sum(axis=1)
    elif level == "ratio":
        D = _ratio_distance(data.values)
        P = np.empty((U, B))
        for b in range(B):
            Nb = sp.csr_matrix((cellw[:, b], (cell_u, cell_v)), shape=(U, V))
            P[:, b] = np.asarray(Nb.multiply(Nb @ D).sum(axis=1)).ravel()
        exp = ((nc @ D) * nc).sum(axis=1)
    else:
        raise _unknown_level(level)
    obs = (f * P).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (n - 1) * obs / exp


def kripp_alpha(units, values, level: Level = "ordinal") -> float:
    """Krippendorff's alpha of long data (units, values); equals ``krippendorff.alpha``.

    Parameters
    ----------
    units, values : array-like
        Unit and value of each rating (long form; NaN dropped).
    level : {"nominal", "ordinal", "interval", "ratio"}

    Returns
    -------
    float
        NaN with no pairable unit or a single value.

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication
    Departmental Papers 43.

    Examples
    --------
    >>> import numpy as np
    >>> units, coders, values = krippendorff_2011()       # the published worked example
    >>> [round(kripp_alpha(units, values, lev), 3) for lev in ("nominal", "ordinal", "interval", "ratio")]
    [0.743, 0.815, 0.849, 0.797]
    """
    data = alpha_data(units, values)
    if data.n_units == 0 or len(data.values) < 2:
        return float("nan")
    return float(alpha_weighted(data, np.ones((1, data.n_units)), level)[0])


def bootstrap_weights(n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial resampling weights (reps x n): how often each of n items is drawn (n draws).

    Parameters
    ----------
    n : int
        Items.
    reps : int
        Replicates.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape (reps, n)
        Each row sums to ``n``.

    References
    ----------
    Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 6.

    Examples
    --------
    >>> import numpy as np
    >>> bootstrap_weights(5, 2, np.random.default_rng(0)).tolist()
    [[0.0, 2.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0, 1.0]]
    """
    idx = rng.integers(0, n, size=(reps, n))
    flat = (idx + (np.arange(reps) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=reps * n).reshape(reps, n).astype(float)


def bootstrap_interval(estimate: float, replicates: np.ndarray, ci_level: float = 0.95,
                       method: CiMethod = "percentile") -> tuple[float, float]:
    """Bootstrap confidence interval from replicates.

    ``percentile``: the ``(1 - ci_level)/2`` and ``(1 + ci_level)/2`` quantiles (Efron & Tibshirani 1993,
    ch. 13). ``bc``: bias-corrected percentile interval, quantiles at ``Phi(2 z0 -/+ z)`` with ``z0 =
    Phi^-1(share of replicates below the estimate, ties counted half)`` (Efron 1981; Efron & Tibshirani
    1993, section 14.3, without the acceleration): it corrects for the bias of the estimator that the
    bootstrap reproduces (alpha is biased downwards when few raters or units are sampled).

    Parameters
    ----------
    estimate : float
        The statistic on the original data (``bc`` reads its position among the replicates).
    replicates : array-like
        Bootstrap replicates (non-finite ones dropped).
    ci_level : float
    method : {"percentile", "bc"}

    Returns
    -------
    (low, high) : tuple of float

    References
    ----------
    Efron, B. (1981). Nonparametric standard errors and confidence intervals. Canadian Journal of Statistics,
    9(2), 139-158. Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13-14.

    Examples
    --------
    >>> import numpy as np
    >>> [round(x, 3) for x in bootstrap_interval(0.5, np.linspace(0, 1, 101))]
    [0.025, 0.975]
    >>> [round(x, 3) for x in bootstrap_interval(0.3, np.linspace(0, 1, 101), method="bc")]   # shifted down
    [0.001, 0.822]
    """
    r = np.asarray(replicates, dtype=float)
    r = r[np.isfinite(r)]
    if not len(r):
        return np.nan, np.nan
    a = (1 - ci_level) / 2
    if method == "percentile":
        q = [a, 1 - a]
    elif method == "bc":
        share = (np.sum(r < estimate) + 0.5 * np.sum(r == estimate)) / len(r)
        z0 = norm.ppf(np.clip(share, 0.5 / len(r), 1 - 0.5 / len(r)))
        q = norm.cdf(2 * z0 + norm.ppf([a, 1 - a]))
    else:
        raise EmoalignError(f"unknown bootstrap interval {method!r}", hint="use percentile or bc")
    lo, hi = np.quantile(r, q)
    return float(lo), float(hi)


def alpha_bootstrap(units, values, level: Level = "ordinal", reps: int = 1000, seed: int = 1,
                    ci_level: float = 0.95, chunk: int = 250, coders=None, resample: Resample = "units",
                    ci_method: CiMethod = "percentile") -> dict:
    """Alpha with a bootstrap CI; ``resample`` says what is drawn (units, coders or both), ``ci_method`` how the
    interval is read off the replicates (:func:`bootstrap_interval`).

    ``coders`` (one coder id per value) is required for ``coders`` and ``both``. Returns dict
    ``estimate``, ``conf_low``, ``conf_high``, ``std_error`` (SD of replicates), ``n`` (pairable units),
    ``n_values`` (pairable values), ``n_coders`` (coders of the pairable values, None without ids),
    ``resample``, ``replicates``. With fewer than two pairable units or a single value the estimate is NaN.

    Parameters
    ----------
    units, values : array-like
        Unit and value of each rating (long form).
    level : {"nominal", "ordinal", "interval", "ratio"}
    reps : int
        Bootstrap replicates (0: no interval).
    seed : int
    ci_level : float
    chunk : int
        Replicates computed at once (memory bound).
    coders : array-like, optional
        Coder of each rating.
    resample : {"units", "coders", "both"}
    ci_method : {"percentile", "bc"}

    Returns
    -------
    dict
        See above.

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication
    Departmental Papers 43.
    Hayes, A. F., & Krippendorff, K. (2007). Communication Methods and Measures, 1(1), 77-89 (a different,
    pair-resampling bootstrap). Owen, A. B. (2007). The Annals of Applied Statistics, 1(2), 386-411.

    Examples
    --------
    >>> import numpy as np
    >>> units, coders, values = krippendorff_2011()       # the published worked example
    >>> res = alpha_bootstrap(units, values, "nominal", reps=200, seed=1)
    >>> round(res["estimate"], 3), res["n"], bool(res["conf_low"] < res["estimate"] <= res["conf_high"])
    (0.743, 11, True)
    """
    if resample not in RESAMPLE_METHODS:
        raise EmoalignError(f"unknown resample {resample!r}", hint="use units, coders or both")
    if resample != "units" and coders is None:
        raise EmoalignError(f"resample: {resample} needs the coder of every value",
                            hint="pass coders=... (one rater id per value)")
    data = alpha_data(units, values, coders)
    out = {"estimate": np.nan, "conf_low": np.nan, "conf_high": np.nan, "std_error": np.nan,
           "n": data.n_units, "n_values": int(data.m.sum()), "n_coders": data.n_coders if coders is not None else None,
           "resample": resample, "replicates": np.array([])}
    if data.n_units < 1 or len(data.values) < 2:
        return out
    out["estimate"] = float(alpha_weighted(data, np.ones((1, data.n_units)), level)[0])
    enough = data.n_units >= 2 if resample == "units" else (data.n_coders >= 2 and (resample == "coders" or data.n_units >= 2))
    if reps > 0 and enough:
        rng = np.random.default_rng(seed)
        size = data.n_units if resample == "units" else int(data.counts.nnz)
        chunk = int(max(1, min(chunk, 4_000_000 // max(size, 1))))  # bound memory: chunk x units (or cells)
        reps_out = []
        for start in range(0, reps, chunk):
            b = min(chunk, reps - start)
            if resample == "units":
                reps_out.append(alpha_weighted(data, bootstrap_weights(data.n_units, b, rng), level))
            else:
                cw = bootstrap_weights(data.n_coders, b, rng)
                uw = bootstrap_weights(data.n_units, b, rng) if resample == "both" else None
                reps_out.append(alpha_two_way(data, cw, level, uw))
        r = np.concatenate(reps_out)
        r = r[np.isfinite(r)]
        if len(r):
            out["conf_low"], out["conf_high"] = bootstrap_interval(out["estimate"], r, ci_level, ci_method)
            out["std_error"] = float(np.std(r, ddof=1)) if len(r) > 1 else np.nan
        out["replicates"] = r
    return out
