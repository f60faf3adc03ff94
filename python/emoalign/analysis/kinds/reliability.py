"""Kind ``reliability``: Krippendorff's alpha with a bootstrap CI, and the six ICC forms.

For ``raters: human`` the data are the raw human trials (coders = ``rater_id``, units = images);
a label column (e.g. humans' chosen ``emotion``) works with ``level: nominal``;
for any other rater set the data are the comparison frame with the human image mean as one more
rater (coders = rater names, units = images). ``by`` computes it per subgroup (e.g. per emotion).

Alpha and its bootstrap live in :mod:`emoalign.analysis.stats.krippendorff`. ``resample`` says what
the bootstrap draws: ``units`` (images, raters fixed), ``coders`` (raters, images fixed) or ``both``
(the two-way pigeonhole bootstrap of the crossed rater x image design, Owen 2007). Human ratings of
faces vary far more between raters than between images, so an interval that should hold for other
raters as well as other images needs ``both``; ``units`` answers "how would alpha vary over other
images rated by these raters". Each alpha row states the scheme in column ``resample`` and the
interval in ``ci_method``: the percentile interval of the replicates (default) or the bias-corrected
percentile interval (``ci_method: bc``; Efron & Tibshirani 1993, ch. 13-14). Not the KALPHA bootstrap of Hayes & Krippendorff (2007), which resamples pairs of
values from the coincidence matrix with the expected disagreement held fixed.

ICC forms come from :mod:`emoalign.analysis.stats.icc` (complete targets x raters data; images
some rater lacks are dropped, ``icc_missing: omit``); their intervals are the analytic F-based
intervals of McGraw & Wong (1996) (no resampling).

References
----------
Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for
Communication, University of Pennsylvania. https://repository.upenn.edu/asc_papers/43
Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411.
Efron, B., & Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 13 (percentile CI).
Shrout, P. E., & Fleiss, J. L. (1979). Psychological Bulletin, 86(2), 420-428.
McGraw, K. O., & Wong, S. P. (1996). Psychological Methods, 1(1), 30-46.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from emoalign.analysis.kinds._shared import groups
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register, tidy
from emoalign.analysis.stats.krippendorff import CI_TEXT, RESAMPLE_TEXT, Level, alpha_bootstrap
from emoalign.analysis.study import HUMAN, Study
from emoalign.errors import EmoalignError


# ---- the kind --------------------------------------------------------------------------------
class ReliabilityOptions(AnalysisBase):
    """Inter-rater reliability: Krippendorff's alpha (bootstrap CI) and/or the six ICC forms.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: human_ceiling             # §3.2
          kind: reliability
          raters: human
          dimension: [valence, arousal]
          level: ordinal
          resample: both
          ci_method: bc
    """

    kind: Literal["reliability"] = "reliability"
    raters: str | list[str] = Field("human", description="`human` (raw trials, coders = rater_id) or any rater set "
                                    "(coders = raters, the human image mean counts as rater `human`).")
    method: Literal["krippendorff", "icc", "both"] = Field("krippendorff", description="Which coefficients to compute.")
    level: Level = Field("ordinal", description="Krippendorff level of measurement (distance metric).")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap replicates for the alpha CI (0 = no CI).")
    resample: Literal["units", "coders", "both"] = Field(
        "units", description="What the alpha bootstrap draws with replacement: units (images; raters fixed), coders "
                             "(raters; images fixed) or both (two-way bootstrap of the crossed rater x image design).")
    seed: int = Field(1, description="Seed of the bootstrap.")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the alpha and ICC intervals.")
    ci_method: Literal["percentile", "bc"] = Field(
        "percentile", description="How the alpha interval is read off the bootstrap replicates: percentile, or bc "
                                  "(bias-corrected percentile; corrects alpha's small-sample bias).")
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


@register("reliability", ReliabilityOptions, compares="ratings")
def run(opts: ReliabilityOptions, study: Study, r=None) -> KindResult:
    """Krippendorff's alpha (percentile bootstrap CI over images, raters or both) and ICC forms, per dimension and
    `by` group."""
    from emoalign.analysis.stats.icc import ICC_FORMS, icc_long

    dims = opts.dimensions() or list(study.scales)
    rows, warnings = [], []
    alpha_ci = f"{CI_TEXT[opts.ci_method]}, {opts.bootstrap} replicates, {RESAMPLE_TEXT[opts.resample]}"
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
                                      opts.bootstrap, opts.seed, opts.ci_level, coders=g[coder].to_numpy(),
                                      resample=opts.resample, ci_method=opts.ci_method)
                if not np.isfinite(res["estimate"]):
                    warnings.append(f"{dim} {key or ''}: alpha undefined (fewer than 2 values per image or one value)")
                rows.append({**base, "metric": "krippendorff_alpha", "estimate": res["estimate"],
                             "std_error": res["std_error"], "conf_low": res["conf_low"], "conf_high": res["conf_high"],
                             "n": res["n"], "level": opts.level, "n_values": res["n_values"],
                             "n_raters": int(g[coder].nunique()), "bootstrap": opts.bootstrap,
                             "resample": opts.resample, "ci_method": alpha_ci if opts.bootstrap else "none"})
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
                                 "form": f"{ICC_FORMS[name][0]} = {ICC_FORMS[name][1]}",
                                 "ci_method": "F-based (McGraw & Wong 1996)"})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["n"] = table["n"].astype("int64")
    return KindResult(tidy(table, ["raters", "dimension", *opts.by]), warnings=warnings,
                      info={"ci": {"krippendorff_alpha": alpha_ci if opts.bootstrap else "none",
                                          "icc": "F-based intervals (McGraw & Wong 1996; no resampling)"}})
