"""Kind ``group_bias``: per-group mean bias (machine - human image mean) with Wilcoxon signed-rank tests.

For each machine rater, dimension and ``by`` group (default: emotion): the differences
``d = machine - human mean`` over the group's images; ``mean_diff`` = mean(d) with a t-based CI
(n - 1 df; ``std_error`` = SD/sqrt(n)), ``statistic`` = Wilcoxon V (sum of ranks of positive d),
``p_value`` from the signed-rank test of d against 0 (R ``wilcox.test`` conventions: ``correct``
continuity correction, ``exact`` "auto" = exact when n < 50 without ties or zeros), and
``p_adjusted`` across the family:

* ``family: analysis`` (default) adjusts over all rows of this analysis (raters x dimensions x groups);
  ``rater`` within each rater; ``dimension`` within each dimension; ``rater_family`` within each
  study group of raters (e.g. ``vlm``, ``fer``).
* ``n_comparisons`` sets the family size explicitly (R ``p.adjust(..., n =)``), for families that
  span analyses. The paper (§3.5) Bonferroni-corrects for 18 comparisons (6 emotions x 3 models):
  reproduce it with ``adjust: bonferroni`` and ``n_comparisons: 18`` (then p_adjusted =
  min(1, 18 p) for every row, whatever ``family`` is).

Columns ``machine_mean``/``human_mean`` give the group means; ``test`` names the p-value method.
The interval of the mean bias is the t interval (no resampling).

Ties: differences of a machine rating and a human mean (k/n) that are equal in exact arithmetic can
differ in the last bits and are then ranked apart, exactly as R's ``wilcox.test`` does by default (V
can move by 0.5-1). Groups where ranking such near-ties as ties would change V are flagged
(``near-ties ranked apart (digits_rank)``) with a warning saying by how much V and p would move;
``digits_rank`` (R's ``digits.rank``) ranks ``signif(|d|, digits_rank)`` so that they tie (e.g. 12).

References
----------
Wilcoxon, F. (1945). Biometrics Bulletin, 1, 80-83. Bonferroni: Dunn, O. J. (1961). Multiple
comparisons among means. JASA, 56, 52-64. Holm, S. (1979). Scand J Stat, 6, 65-70.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import t as t_dist

from emoalign.analysis.kinds._shared import check_columns, finish, groups, paired_with_human, require_dimensions
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, add_flag, register
from emoalign.analysis.stats import p_adjust, wilcoxon_signed_rank
from emoalign.analysis.stats.wilcoxon import NEAR_TIE_DIGITS
from emoalign.analysis.study import HUMAN, Study
from emoalign.errors import EmoalignError


class GroupBiasOptions(AnalysisBase):
    """Machine - human bias per group, with Wilcoxon signed-rank tests and adjusted p-values.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: valence_bias              # Table 4
          kind: group_bias
          raters: [vlm, fer_va]
          dimension: valence
          adjust: bonferroni
          n_comparisons: 18
    """

    kind: Literal["group_bias"] = "group_bias"
    by: list[str] = Field(default_factory=lambda: ["emotion"],
                          description="Design columns defining the groups (default [emotion]).")
    correct: bool = Field(True, description="Continuity correction of the Wilcoxon normal approximation (R default).")
    exact: bool | Literal["auto"] = Field("auto", description="Exact Wilcoxon p-value: auto = when n < 50 and no "
                                                              "ties/zeros (R default); true falls back like R.")
    adjust: Literal["bonferroni", "holm", "hochberg", "BH", "BY", "none"] = Field(
        "bonferroni", description="p-value adjustment across the family (R p.adjust).")
    family: Literal["analysis", "rater", "dimension", "rater_family"] = Field(
        "analysis", description="Which rows form one family for the adjustment.")
    n_comparisons: int | None = Field(None, ge=1, description="Family size passed to p.adjust as n (default: the "
                                                              "number of tests in the family); 18 reproduces the paper.")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the t interval of the mean bias.")
    digits_rank: int | None = Field(
        None, ge=1, description="Rank signif(|difference|, digits_rank) in the Wilcoxon test (R's digits.rank), so "
                                "floating-point near-ties tie; default: exact values, as R's default.")


def bias_row(machine: np.ndarray, human: np.ndarray, opts: GroupBiasOptions) -> dict:
    """Mean bias, t CI and Wilcoxon test of paired machine/human values."""
    d = machine - human
    n = len(d)
    est = float(d.mean()) if n else math.nan
    se = lo = hi = math.nan
    if n >= 2:
        se = float(d.std(ddof=1) / math.sqrt(n))
        q = t_dist.ppf(1 - (1 - opts.ci_level) / 2, n - 1)
        lo, hi = est - q * se, est + q * se
    w = wilcoxon_signed_rank(d, correct=opts.correct, exact=opts.exact, digits_rank=opts.digits_rank)
    shift = (0.0, 0.0)
    if w.near_ties:  # what ranking the near-ties as ties would change
        tied = wilcoxon_signed_rank(d, correct=opts.correct, exact=opts.exact, digits_rank=NEAR_TIE_DIGITS)
        shift = (abs(tied.statistic - w.statistic), abs(tied.p_value - w.p_value))
    return dict(metric="mean_diff", estimate=est, std_error=se, statistic=w.statistic, p_value=w.p_value,
                conf_low=lo, conf_high=hi, n=n, machine_mean=float(machine.mean()) if n else math.nan,
                human_mean=float(human.mean()) if n else math.nan, test=f"wilcoxon signed-rank, {w.method}",
                _note=w.note, _near=shift)


NEAR_TIES = "near-ties ranked apart (digits_rank)"


@register("group_bias", GroupBiasOptions, compares="ratings_vs_human")
def run(opts: GroupBiasOptions, study: Study, r=None) -> KindResult:
    """Per-group machine - human bias with Wilcoxon signed-rank tests and family-wise adjustment."""
    rows, warnings, near = [], [], []
    for dim in require_dimensions(opts):
        cf = study.comparison_frame(dim, opts.raters, aggregate="mean", subset=opts.subset)
        check_columns(cf, opts.by, opts.id)
        for rater in [x for x in dict.fromkeys(cf["rater"]) if x != HUMAN]:
            pairs = paired_with_human(cf, rater, opts.by)
            for key, g in groups(pairs, opts.by):
                row = bias_row(g["machine"].to_numpy(float), g["human"].to_numpy(float), opts)
                note = row.pop("_note")
                if note:
                    warnings.append(f"{opts.id}: {rater} {dim} {key}: {note}")
                near.append(row.pop("_near"))
                rows.append({"rater": rater, "dimension": dim, **key, **row})
    if not rows:
        raise EmoalignError(f"analysis {opts.id!r}: no machine rater has ratings on human-rated images")
    table = finish(rows, ["rater", "dimension", *opts.by])
    fam = {"analysis": pd.Series(0, index=table.index), "rater": table["rater"], "dimension": table["dimension"],
           "rater_family": table["rater"].map(study.family_of)}[opts.family]
    adjusted = pd.Series(np.nan, index=table.index)
    for _, idx in table.groupby(fam, sort=False).groups.items():
        p = table.loc[idx, "p_value"].to_numpy(float)
        n_tests = int(np.sum(~np.isnan(p)))
        if opts.n_comparisons is not None and opts.n_comparisons < n_tests:
            raise EmoalignError(f"analysis {opts.id!r}: n_comparisons ({opts.n_comparisons}) is smaller than the "
                                f"{n_tests} tests in one family",
                                hint="raise n_comparisons or leave it out (family size = number of tests)")
        adjusted.loc[idx] = p_adjust(p, opts.adjust, n=opts.n_comparisons)
    table.insert(table.columns.get_loc("p_value") + 1, "p_adjusted", adjusted.to_numpy())
    moved = np.array([dv > 0 for dv, _ in near])
    if moved.any():
        add_flag(table, moved, NEAR_TIES)
        warnings.append(f"{opts.id}: in {int(moved.sum())} group(s) floating-point near-ties among the differences "
                        f"(equal to {NEAR_TIE_DIGITS} significant digits) are ranked apart, as R's wilcox.test does by "
                        f"default; ranking them as ties would change V by up to {max(dv for dv, _ in near):g} and p by "
                        f"up to {max(dp for _, dp in near):.2g}. Set digits_rank: {NEAR_TIE_DIGITS} to rank them as ties")
    return KindResult(table, warnings=warnings, info={"adjust": opts.adjust, "family": opts.family,
                                                      "n_comparisons": opts.n_comparisons,
                                                      "digits_rank": opts.digits_rank,
                                                      "ci": "t interval of the mean difference (no resampling)"})
