"""Kind ``reliability``: Krippendorff's alpha with a bootstrap CI over units, and the six ICC forms.

For ``raters: human`` the data are the raw human trials (coders = ``rater_id``, units = images);
a label column (e.g. humans' chosen ``emotion``) works with ``level: nominal``;
for any other rater set the data are the comparison frame with the human image mean as one more
rater (coders = rater names, units = images). ``by`` computes it per subgroup (e.g. per emotion).

Alpha is computed from the unit x value count matrix ``N`` (pairable units only, i.e. units with
at least two values). Every level of measurement reduces to per-unit sums, so a bootstrap
replicate (units resampled with replacement, weights ``w``) is a weighted sum, with no V x V
matrix except for the ratio metric:

* coincidence marginals ``n_c = sum_u w_u N_uc``, ``n = sum_c n_c``;
* interval: ``sum o d = sum_u w_u/(m_u-1) (2 m_u S2_u - 2 S1_u^2)`` with ``S1_u = sum_c N_uc x_c``,
  ``S2_u = sum_c N_uc x_c^2``; ``sum n_c n_k d = 2 n sum n_c x_c^2 - 2 (sum n_c x_c)^2``;
* ordinal: Krippendorff's ordinal distance ``(sum_{g=c..k} n_g - (n_c+n_k)/2)^2`` equals
  ``(M_k - M_c)^2`` with the mid-ranks ``M_c = sum_{g<=c} n_g - n_c/2``, i.e. the interval formula
  on mid-ranks recomputed from each replicate's marginals;
* nominal: ``sum o d = sum_u w_u (m_u^2 - sum_c N_uc^2)/(m_u-1)``, ``sum n_c n_k d = n^2 - sum n_c^2``;
* ratio: ``d_ck = ((c-k)/(c+k))^2`` with a dense V x V matrix;

and ``alpha = 1 - (n-1) sum o d / sum n_c n_k d``. On the original data (all w = 1) this equals
``krippendorff.alpha`` (tested to 1e-10). The CI is the percentile interval of the replicates.

ICC forms come from :mod:`emoalign.analysis.stats.icc` (complete targets x raters data; images
some rater lacks are dropped, ``icc_missing: omit``).

References
----------
Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for
Communication, University of Pennsylvania. https://repository.upenn.edu/asc_papers/43
Krippendorff, K. (2004). Content Analysis: An Introduction to Its Methodology (2nd ed.), ch. 11.
Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a standard reliability measure
for coding data. Communication Methods and Measures, 1(1), 77-89 (bootstrapping alpha).
Efron, B., & Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 13 (percentile CI).
Shrout, P. E., & Fleiss, J. L. (1979). Psychological Bulletin, 86(2), 420-428.
McGraw, K. O., & Wong, S. P. (1996). Psychological Methods, 1(1), 30-46.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register, tidy
from emoalign.analysis.kinds._shared import groups
from emoalign.analysis.study import HUMAN, Study
from emoalign.errors import EmoalignError

Level = Literal["nominal", "ordinal", "interval", "ratio"]


# ---- alpha core ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlphaData:
    """Unit x value counts of the pairable units (>= 2 values), the sorted value domain, and m_u."""

    counts: sp.csr_matrix
    values: np.ndarray
    m: np.ndarray
    units: np.ndarray

    @property
    def n_units(self) -> int:
        return int(self.counts.shape[0])


def alpha_data(units, values) -> AlphaData:
    """Build :class:`AlphaData` from long arrays (one entry per coder x unit value; NaN dropped)."""
    units = np.asarray(units)
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    units, values = units[keep], values[keep]
    ucodes, uniq_units = pd.factorize(units, sort=False)
    domain, vcodes = np.unique(values, return_inverse=True)
    counts = sp.coo_matrix((np.ones(len(vcodes)), (ucodes, vcodes)),
                           shape=(len(uniq_units), len(domain))).tocsr()
    m = np.asarray(counts.sum(axis=1)).ravel()
    pairable = m >= 2
    counts = counts[pairable]
    return AlphaData(counts=counts, values=domain, m=m[pairable], units=np.asarray(uniq_units)[pairable])


def alpha_weighted(data: AlphaData, weights: np.ndarray, level: Level) -> np.ndarray:
    """Alpha for each row of ``weights`` (B x U unit weights; ones = the original data)."""
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
        v = data.values
        s = v[:, None] + v[None, :]
        D = np.divide(v[:, None] - v[None, :], s, out=np.zeros_like(s), where=s != 0) ** 2
        per_unit = np.asarray(N.multiply(N @ D).sum(axis=1)).ravel()
        obs = A @ per_unit
        exp = ((nc @ D) * nc).sum(axis=1)
    else:
        raise EmoalignError(f"unknown level of measurement {level!r}", hint="use nominal, ordinal, interval or ratio")
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (n - 1) * obs / exp


def kripp_alpha(units, values, level: Level = "ordinal") -> float:
    """Krippendorff's alpha of long data (units, values); equals ``krippendorff.alpha``."""
    data = alpha_data(units, values)
    if data.n_units == 0 or len(data.values) < 2:
        return float("nan")
    return float(alpha_weighted(data, np.ones((1, data.n_units)), level)[0])


def bootstrap_weights(n_units: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial resampling weights (reps x n_units): how often each unit is drawn."""
    idx = rng.integers(0, n_units, size=(reps, n_units))
    W = np.zeros((reps, n_units))
    np.add.at(W, (np.repeat(np.arange(reps), n_units), idx.ravel()), 1.0)
    return W


def alpha_bootstrap(units, values, level: Level = "ordinal", reps: int = 1000, seed: int = 1,
                    ci_level: float = 0.95, chunk: int = 250) -> dict:
    """Alpha with a percentile bootstrap CI over units.

    Returns dict ``estimate``, ``conf_low``, ``conf_high``, ``std_error`` (SD of replicates),
    ``n`` (pairable units), ``n_values`` (pairable values), ``replicates``. With fewer than two
    pairable units or a single value the estimate is NaN.
    """
    data = alpha_data(units, values)
    out = {"estimate": np.nan, "conf_low": np.nan, "conf_high": np.nan, "std_error": np.nan,
           "n": data.n_units, "n_values": int(data.m.sum()), "replicates": np.array([])}
    if data.n_units < 1 or len(data.values) < 2:
        return out
    out["estimate"] = float(alpha_weighted(data, np.ones((1, data.n_units)), level)[0])
    if reps > 0 and data.n_units >= 2:
        rng = np.random.default_rng(seed)
        chunk = int(max(1, min(chunk, 4_000_000 // data.n_units)))  # bound memory: chunk x units weights
        reps_out = []
        for start in range(0, reps, chunk):
            W = bootstrap_weights(data.n_units, min(chunk, reps - start), rng)
            reps_out.append(alpha_weighted(data, W, level))
        r = np.concatenate(reps_out)
        r = r[np.isfinite(r)]
        if len(r):
            a = (1 - ci_level) / 2
            out["conf_low"], out["conf_high"] = (float(q) for q in np.quantile(r, [a, 1 - a]))
            out["std_error"] = float(np.std(r, ddof=1)) if len(r) > 1 else np.nan
        out["replicates"] = r
    return out


# ---- the kind --------------------------------------------------------------------------------
class ReliabilityOptions(AnalysisBase):
    """Inter-rater reliability: Krippendorff's alpha (bootstrap CI) and/or the six ICC forms."""

    kind: Literal["reliability"] = "reliability"
    raters: str | list[str] = Field("human", description="`human` (raw trials, coders = rater_id) or any rater set "
                                    "(coders = raters, the human image mean counts as rater `human`).")
    method: Literal["krippendorff", "icc", "both"] = Field("krippendorff", description="Which coefficients to compute.")
    level: Level = Field("ordinal", description="Krippendorff level of measurement (distance metric).")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap replicates over units for the alpha CI (0 = no CI).")
    seed: int = Field(1, description="Seed of the bootstrap.")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the alpha and ICC intervals.")
    ci_method: Literal["percentile"] = Field("percentile", description="Bootstrap CI method.")
    icc_missing: Literal["omit", "raise"] = Field(
        "omit", description="ICC needs complete data: drop images some rater lacks (omit) or fail (raise).")


def _frame(opts: ReliabilityOptions, study: Study, dim: str) -> tuple[pd.DataFrame, str, str]:
    """Long frame with unit, coder and rating columns, and the label of the rater set."""
    names = study.resolve_raters(opts.raters, default=HUMAN)
    if names == [HUMAN]:
        df = study.human_trials(dim, opts.subset).rename(columns={"rater_id": "coder"})
        return df, "coder", HUMAN
    df = study.comparison_frame(dim, names, aggregate="mean", subset=opts.subset, include_human=HUMAN in names)
    df = df.rename(columns={"rater": "coder"})
    return df, "coder", ",".join(sorted(names))


@register("reliability", ReliabilityOptions)
def run(opts: ReliabilityOptions, study: Study, r=None) -> KindResult:
    """Krippendorff's alpha (bootstrap percentile CI over images) and ICC forms, per dimension and `by` group."""
    from emoalign.analysis.stats.icc import ICC_FORMS, icc_long

    dims = opts.dimensions() or list(study.scales)
    rows, warnings = [], []
    for dim in dims:
        df, coder, label = _frame(opts, study, dim)
        for col in opts.by:
            if col not in df.columns:
                raise EmoalignError(f"by names column {col!r}, which the data lacks",
                                    hint=f"design columns: {', '.join(study.design_columns)}")
        for key, g in groups(df, opts.by):
            base = {"raters": label, "dimension": dim, **key}
            if opts.method in ("krippendorff", "both"):
                values = g["rating"]
                if not pd.api.types.is_numeric_dtype(values):  # categorical choices, e.g. humans' emotion labels
                    if opts.level != "nominal":
                        raise EmoalignError(f"dimension {dim!r} holds labels, not numbers: use level: nominal")
                    codes, _ = pd.factorize(values.astype("string"))
                    values = pd.Series(np.where(codes < 0, np.nan, codes), index=values.index)
                res = alpha_bootstrap(g["image_id"].to_numpy(), values.to_numpy(dtype=float), opts.level,
                                      opts.bootstrap, opts.seed, opts.ci_level)
                if not np.isfinite(res["estimate"]):
                    warnings.append(f"{dim} {key or ''}: alpha undefined (fewer than 2 values per image or one value)")
                rows.append({**base, "metric": "krippendorff_alpha", "estimate": res["estimate"],
                             "std_error": res["std_error"], "conf_low": res["conf_low"], "conf_high": res["conf_high"],
                             "n": res["n"], "level": opts.level, "n_values": res["n_values"],
                             "n_raters": int(g[coder].nunique()), "bootstrap": opts.bootstrap})
            if opts.method in ("icc", "both"):
                try:
                    forms = icc_long(g, "image_id", coder, "rating", nan_policy=opts.icc_missing,
                                     conf_level=opts.ci_level)
                except EmoalignError as exc:
                    if opts.method == "icc":
                        raise
                    warnings.append(f"ICC skipped for {dim} {key or ''}: {str(exc).splitlines()[0]}")
                    continue
                for name, f in forms.items():
                    rows.append({**base, "metric": name, "estimate": f.estimate, "statistic": f.statistic,
                                 "df": f.df1, "df2": f.df2, "p_value": f.p_value, "conf_low": f.conf_low,
                                 "conf_high": f.conf_high, "n": f.n, "n_raters": f.k,
                                 "form": f"{ICC_FORMS[name][0]} = {ICC_FORMS[name][1]}"})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["n"] = table["n"].astype("int64")
    return KindResult(tidy(table, ["raters", "dimension", *opts.by]), warnings=warnings)
