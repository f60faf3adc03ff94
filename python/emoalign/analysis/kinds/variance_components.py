"""Kind ``variance_components``: crossed random-effects decomposition of raw human trials (lme4).

Fits ``rating ~ 1 + (1|rater_id) + (1|image_id)`` (plus optional ``fixed`` effects, or any
``formula``) by REML on the raw human trials of each dimension and reports each variance
component, its share of the total (components incl. the residual), and the rater / image
variance ratio (paper section 3.2: rater differences dominate image variance by 11x for valence,
32x for arousal). The paper's numbers need the emotion as a fixed effect (``fixed: [emotion]``):
image variance is then the within-emotion image variance. The ``share`` of ``image_id`` is the
single-rating absolute-agreement ICC of this crossed random-effects model (Shrout & Fleiss ICC(2,1)
estimated by REML, usable with the sparse designs where the ANOVA ICC is not).

Each fit starts from method-of-moments estimates of the variances (``start: moments``: the level
means of the fixed-effect residuals, Henderson 1953; about a quarter fewer deviance evaluations than
lme4's default start, to the same optimum) and is checked for convergence and restarted when lme4's
check fails
(:mod:`emoalign.analysis.kinds._lmer`); extra table ``glance``: one row per model (dimension, by
groups) with the fit statistics and the convergence record. Rows of a fit that still fails carry
``flag = "not converged"``; a singular fit (a variance estimated as 0) ``"singular fit"``.
Intervals: none by default; ``ci: profile`` gives likelihood-profile intervals (no resampling).
The fits (dimensions x ``by`` groups) are independent: they run side by side in forked workers of the R
session when cores allow (:meth:`emoalign.analysis.rbridge.RBridge.call_each`), with the same results.

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Journal of Statistical Software, 67(1).
Baayen, R. H., Davidson, D. J., & Bates, D. M. (2008). Mixed-effects modeling with crossed random
effects for subjects and items. Journal of Memory and Language, 59(4), 390-412.
Shrout, P. E., & Fleiss, J. L. (1979) (variance-component view of rater reliability).
Henderson, C. R. (1953). Estimation of variance and covariance components. Biometrics, 9(2), 226-252.
Bates, D. et al. (2015), section 5.1: likelihood-profile confidence intervals (``ci: profile``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from emoalign.analysis.checks import Problem, formula_problems, trial_columns
from emoalign.analysis.kinds._lmer import ConvergenceOptions, glance_flags, lmer_messages
from emoalign.analysis.kinds._shared import groups
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, add_flag, register, tidy
from emoalign.analysis.study import Study
from emoalign.errors import EmoalignError

DEFAULT_FORMULA = "rating ~ 1 + (1|rater_id) + (1|image_id)"


class VarianceComponentsOptions(AnalysisBase, ConvergenceOptions):
    """Variance decomposition of raw human trials into rater, image and residual variance.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: variance_decomposition    # §3.2
          kind: variance_components
          dimension: [valence, arousal]
          fixed: [emotion]
    """

    kind: Literal["variance_components"] = "variance_components"
    raters: Literal["human"] = Field("human", description="Only raw human trials are decomposed.")
    fixed: list[str] = Field(default_factory=list, description="Fixed effects added to the default formula, "
                                                               "e.g. [emotion] (design columns).")
    formula: str | None = Field(None, description="Full lme4 formula over trial columns (rating, rater_id, "
                                                  "image_id, design columns); overrides `fixed`.")
    reml: bool = Field(True, description="REML (true) or maximum likelihood (false).")
    ci: Literal["none", "profile"] = Field("none", description="Variance CIs: none, or likelihood-profile intervals "
                                                               "(slow on large data: minutes for 72,000 trials).")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the profile intervals.")
    start: Literal["moments", "lme4"] = Field(
        "moments", description="Starting values of the fit: method-of-moments estimates (moments; fewer deviance "
                               "evaluations, same optimum) or lme4's default (lme4). Either way the fit is checked.")

    def model_formula(self) -> str:
        if self.formula:
            return self.formula
        extra = "".join(f" + {f}" for f in self.fixed)
        return f"rating ~ 1{extra} + (1|rater_id) + (1|image_id)"

    def r_formula(self) -> tuple[str, str]:
        return ("fixed" if self.fixed and not self.formula else "formula"), self.model_formula()


def check(opts: VarianceComponentsOptions, study: Study) -> list[Problem]:
    """The formula's variables are columns of the raw human trials (rater_id, image_id, rating, design columns)."""
    fieldname, formula = opts.r_formula()
    return formula_problems(fieldname, formula, "the human trials", trial_columns(study))


@register("variance_components", VarianceComponentsOptions, check=check)
def run(opts: VarianceComponentsOptions, study: Study, r=None) -> KindResult:
    """Rater / image / residual variances and shares of raw human trials (lme4 REML)."""
    from emoalign.formula import formula_variables

    if r is None:
        from emoalign.analysis.rbridge import get_r
        r = get_r()
    dims = opts.dimensions() or list(study.scales)
    formula = opts.model_formula()
    fits, calls = [], []  # every (dimension, by group) is an independent fit: sent to R together (call_each)
    for dim in dims:
        trials = study.human_trials(dim, opts.subset)
        cols = list(dict.fromkeys([*formula_variables(formula), *opts.by]))
        missing = [c for c in cols if c not in trials.columns]
        if missing:
            raise EmoalignError(f"formula/by names column(s) {', '.join(missing)}, which the human trials lack",
                                hint=f"columns: {', '.join(trials.columns)}")
        for key, g in groups(trials[cols].dropna(), opts.by):
            fits.append((dim, key))
            calls.append(((g.drop(columns=[c for c in opts.by if c not in formula_variables(formula)]),),
                          dict(formula=formula, reml=opts.reml, ci=opts.ci, conf_level=opts.ci_level, start=opts.start,
                               **opts.lmer_args())))
    tables, glances, warnings = [], [], []
    for (dim, key), res in zip(fits, r.call_each("variance_components", calls, packages=("lme4",))):
        t, gl = res.value["table"], res.value["glance"]
        for part in (t, gl):
            for k, v in reversed(list(key.items())):
                part.insert(0, k, v)
            part.insert(0, "dimension", dim)
        for flag in glance_flags(gl):
            add_flag(t, np.ones(len(t), dtype=bool), flag)
        tables.append(t)
        glances.append(gl)
        warnings += [f"{dim} {key or ''}: {w}".replace(" {}", "") for w in lmer_messages(res)]
    table = pd.concat(tables, ignore_index=True)
    table["n"] = table["n"].astype("int64")
    return KindResult(tidy(table, ["dimension", *opts.by, "group"]), warnings=warnings,
                      info={"formula": formula, "ci": "none" if opts.ci == "none" else
                            "likelihood-profile intervals of the standard deviations, squared (no resampling)"},
                      extra={"glance": pd.concat(glances, ignore_index=True)})
