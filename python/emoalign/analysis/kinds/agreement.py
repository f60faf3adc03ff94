"""Kind ``agreement``: each machine rater against the human image mean, per dimension (and ``by`` group).

Pairs are the images both the machine and at least one human rated; the human value is the mean
over that image's trials. Metrics (machine - human where signed):

* ``pearson_r``: t test (``statistic``, ``df`` = n - 2) and Fisher-z CI;
* ``mae``, ``rmse``;
* ``machine_mean``, ``human_mean`` (t-based CI, ``std_error``), ``machine_sd``, ``human_sd`` (n - 1);
* ``sd_ratio`` = machine SD / human SD (polarity exaggeration when > 1; Tae et al. 2026 §4.2);
* ``mean_diff`` (Bland-Altman bias; t CI), ``sd_diff``, ``loa_low``/``loa_high`` = bias -/+ ``loa_z`` SD
  (CI from the approximate SE sqrt(3 SD^2 / n), Bland & Altman 1986);
* ``ba_slope``, ``ba_intercept``: proportional bias, the least-squares regression of the difference on
  the mean of the two (Bland & Altman 1999, §3.2): slope with t test (n - 2 df) and t CI; a slope
  different from 0 means the bias changes with the level rated;
* ``icc_a1``: ICC(A,1) (two-way random, absolute agreement, single rater) between machine and
  human mean, F test (``statistic``, ``df``, ``df2``) and McGraw-Wong CI.

Extra table ``points`` (for Bland-Altman plots): rater, dimension, by-cols, image_id, machine,
human, mean, diff.

Every interval is analytic (no resampling). A machine rater with one value for every image of a group
has no Pearson r or ICC (NaN): those rows are flagged ``constant machine ratings`` and warned about.

References
----------
Bland, J. M., & Altman, D. G. (1986). The Lancet, 327(8476), 307-310. Bland, J. M., & Altman, D. G.
(1999). Measuring agreement in method comparison studies. Statistical Methods in Medical Research, 8,
135-160. McGraw, K. O., & Wong, S. P.
(1996). Psychological Methods, 1(1), 30-46. Fisher, R. A. (1921). Metron, 1, 3-32.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import t as t_dist

from emoalign.analysis.kinds._shared import check_columns, finish, groups, paired_with_human, require_dimensions
from emoalign.analysis.kinds.base import CONSTANT_RATINGS, AnalysisBase, KindResult, add_flag, register
from emoalign.analysis.stats import bland_altman, icc, pearson
from emoalign.analysis.study import HUMAN, Study


#: how each interval is computed (manifest info)
INTERVALS = {"pearson_r": "Fisher z (analytic)", "machine_mean": "t interval", "human_mean": "t interval",
             "mean_diff": "t interval (Bland & Altman 1986)",
             "loa_low": "approximate SE sqrt(3 SD^2 / n) (Bland & Altman 1986)",
             "loa_high": "approximate SE sqrt(3 SD^2 / n) (Bland & Altman 1986)",
             "icc_a1": "F-based (McGraw & Wong 1996)",
             "ba_slope": "t interval (OLS of the difference on the mean; Bland & Altman 1999)",
             "ba_intercept": "t interval (OLS of the difference on the mean; Bland & Altman 1999)", "resampling": "none"}


class AgreementOptions(AnalysisBase):
    """Dimensional agreement of each machine rater with the human image means (r, ICC, MAE, RMSE, Bland-Altman).

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: dimensional_agreement     # Tables 3 and 5
          kind: agreement
          raters: [vlm, fer_va]
          dimension: [valence, arousal]
    """

    kind: Literal["agreement"] = "agreement"
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of every interval.")
    loa_z: float = Field(1.96, gt=0, description="Limits of agreement = bias -/+ loa_z x SD of the differences.")


def _mean_row(metric: str, x: np.ndarray, level: float) -> dict:
    n = len(x)
    m = float(x.mean()) if n else math.nan
    if n < 2:
        return dict(metric=metric, estimate=m, n=n)
    se = float(x.std(ddof=1) / math.sqrt(n))
    q = t_dist.ppf(1 - (1 - level) / 2, n - 1)
    return dict(metric=metric, estimate=m, std_error=se, conf_low=m - q * se, conf_high=m + q * se, n=n)


def agreement_rows(machine: np.ndarray, human: np.ndarray, level: float = 0.95, loa_z: float = 1.96) -> list[dict]:
    """All agreement metrics of paired machine/human values (see the module docstring)."""
    n = len(machine)
    d = machine - human
    r = pearson(machine, human, level)
    ba = bland_altman(machine, human, z=loa_z, conf_level=level)
    sd = lambda x: float(x.std(ddof=1)) if len(x) > 1 else math.nan  # noqa: E731
    rows = [
        dict(metric="pearson_r", estimate=r.estimate, statistic=r.statistic, df=r.df, p_value=r.p_value,
             conf_low=r.conf_low, conf_high=r.conf_high, n=n),
        dict(metric="mae", estimate=float(np.abs(d).mean()) if n else math.nan, n=n),
        dict(metric="rmse", estimate=float(np.sqrt((d ** 2).mean())) if n else math.nan, n=n),
        _mean_row("machine_mean", machine, level),
        dict(metric="machine_sd", estimate=sd(machine), n=n),
        _mean_row("human_mean", human, level),
        dict(metric="human_sd", estimate=sd(human), n=n),
        dict(metric="sd_ratio", estimate=sd(machine) / sd(human) if n > 1 and sd(human) > 0 else math.nan, n=n),
        dict(metric="mean_diff", estimate=ba.bias, std_error=ba.bias_se, conf_low=ba.bias_conf_low,
             conf_high=ba.bias_conf_high, n=n),
        dict(metric="sd_diff", estimate=ba.sd, n=n),
        dict(metric="loa_low", estimate=ba.loa_low, std_error=ba.loa_se, conf_low=ba.loa_low_conf[0],
             conf_high=ba.loa_low_conf[1], n=n),
        dict(metric="loa_high", estimate=ba.loa_high, std_error=ba.loa_se, conf_low=ba.loa_high_conf[0],
             conf_high=ba.loa_high_conf[1], n=n),
    ]
    rows += proportional_bias_rows(machine, human, level)
    if n >= 2 and (np.ptp(machine) > 0 or np.ptp(human) > 0):
        a1 = icc(np.column_stack([machine, human]), conf_level=level)["icc_a1"]
        rows.append(dict(metric="icc_a1", estimate=a1.estimate, statistic=a1.statistic, df=a1.df1, df2=a1.df2,
                         p_value=a1.p_value, conf_low=a1.conf_low, conf_high=a1.conf_high, n=n))
    else:
        rows.append(dict(metric="icc_a1", estimate=math.nan, n=n))
    return rows


def proportional_bias_rows(machine: np.ndarray, human: np.ndarray, level: float = 0.95) -> list[dict]:
    """``ba_slope`` / ``ba_intercept``: OLS of (machine - human) on their mean (Bland & Altman 1999, §3.2)."""
    from scipy.stats import linregress

    n = len(machine)
    mean, d = (machine + human) / 2, machine - human
    if n < 3 or np.ptp(mean) == 0:
        return [dict(metric="ba_slope", estimate=math.nan, n=n), dict(metric="ba_intercept", estimate=math.nan, n=n)]
    fit = linregress(mean, d)
    q = t_dist.ppf(1 - (1 - level) / 2, n - 2)
    out = []
    for metric, est, se in (("ba_slope", fit.slope, fit.stderr), ("ba_intercept", fit.intercept, fit.intercept_stderr)):
        t = est / se if se > 0 else math.nan
        p = float(2 * t_dist.sf(abs(t), n - 2)) if se > 0 else math.nan
        out.append(dict(metric=metric, estimate=float(est), std_error=float(se), statistic=t, df=float(n - 2), p_value=p,
                        conf_low=float(est - q * se), conf_high=float(est + q * se), n=n))
    return out


@register("agreement", AgreementOptions, compares="ratings_vs_human")
def run(opts: AgreementOptions, study: Study, r=None) -> KindResult:
    """Pearson r, MAE, RMSE, means/SDs, Bland-Altman and ICC(A,1) of each machine rater vs the human mean."""
    rows, points, warnings, constant = [], [], [], []
    for dim in require_dimensions(opts):
        cf = study.comparison_frame(dim, opts.raters, aggregate="mean", subset=opts.subset)
        check_columns(cf, opts.by, opts.id)
        for rater in [x for x in dict.fromkeys(cf["rater"]) if x != HUMAN]:
            pairs = paired_with_human(cf, rater, opts.by)
            if pairs.empty:
                warnings.append(f"{opts.id}: rater {rater} has no {dim} ratings on human-rated images; skipped")
                continue
            for key, g in groups(pairs, opts.by):
                m, h = g["machine"].to_numpy(float), g["human"].to_numpy(float)
                group_rows = agreement_rows(m, h, opts.ci_level, opts.loa_z)
                rows += [{"rater": rater, "dimension": dim, **key, **row} for row in group_rows]
                flat = len(m) >= 2 and np.ptp(m) == 0
                constant += [flat] * len(group_rows)
                if flat and key and np.ptp(pairs["machine"]) > 0:  # a rater constant overall is warned about once
                    warnings.append(f"{opts.id}: rater {rater} gives every image{' of ' + ', '.join(key.values()) if key else ''}"
                                    f" the same {dim} rating ({m[0]:g}): Pearson r and ICC are undefined (NaN)")
            pts = pairs[["image_id", *opts.by]].copy()
            pts.insert(0, "dimension", dim)
            pts.insert(0, "rater", rater)
            pts["machine"], pts["human"] = pairs["machine"].to_numpy(), pairs["human"].to_numpy()
            pts["mean"] = (pts["machine"] + pts["human"]) / 2
            pts["diff"] = pts["machine"] - pts["human"]
            points.append(pts)
    table = finish(rows, ["rater", "dimension", *opts.by])
    add_flag(table, np.array(constant, dtype=bool), CONSTANT_RATINGS)
    extra = {"points": pd.concat(points, ignore_index=True)} if points else {}
    return KindResult(table, warnings=warnings, extra=extra,
                      info={"ci_level": opts.ci_level, "loa_z": opts.loa_z, "ci": INTERVALS})
