"""Kind ``lmm``: any lme4 formula over the comparison frame, fitted in R with lmerTest.

Default (``per_rater: true``): one model per machine rater against the human aggregate, on the
comparison frame restricted to rater ``human`` + that rater (the paper's
``rating ~ rater_type * emotion + (1|image_id)``). ``per_rater: false`` fits one model to all
selected raters together (rater column ``rater`` = the rater names joined by commas). ``by`` fits
the model separately within each level of the named design columns.
Fixed-effect tests use Satterthwaite df by default (``df_method``); the CIs are Wald intervals
``estimate +- t(1 - alpha/2, df) * SE`` (normal quantile for ``asymptotic``). Random-effect rows
give variances (``var__<term>``) and covariances. The model-level record is the extra table ``glance``,
one row per model (broom's glance: AIC, BIC, logLik, deviance, nobs, singular) with the convergence record
of :mod:`emoalign.analysis.kinds._lmer` (results contract 2; contract 1 also had ``effect = "fit"`` rows).
lme4 singularity messages and restart notes are kept as warnings. ``contrast`` (with
``contrast_by``) adds emmeans simple effects (rows ``effect = "contrast"``), e.g. the per-emotion
machine − human difference of ``rating ~ rater_type * emotion`` (Lenth, emmeans R package).

Rows of fits that cannot be taken at face value are flagged (column ``flag``): ``not converged``
(lme4's check still fails after the restart), ``singular fit`` (``lme4::isSingular``: a variance
estimated as 0; the tests are those of the reduced model, so they are kept, flagged) and ``constant
machine ratings`` (a machine rater gives one value to every image of the model: the fit sits at the
boundary, whether lme4 calls it singular and the Satterthwaite df can change with the row order). For
constant-rating fits the inference that rests on the df (``df``, ``p_value``, ``conf_low``,
``conf_high``) is withheld (NaN) unless ``constant_p_values: true``; the rows stay flagged either way.
Intervals: Wald, ``estimate +- t(df) * SE`` from the fitted model (no resampling).

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models
using lme4. Journal of Statistical Software, 67(1), 1-48.
Kuznetsova, A., Brockhoff, P. B., & Christensen, R. H. B. (2017). lmerTest package: tests in
linear mixed effects models. Journal of Statistical Software, 82(13), 1-26.
Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance components.
Biometrics Bulletin, 2(6), 110-114. Kenward, M. G., & Roger, J. H. (1997). Biometrics, 53, 983-997.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import AliasChoices, Field

from emoalign.analysis.checks import Problem, formula_problems, frame_columns
from emoalign.analysis.kinds._lmer import ConvergenceOptions, glance_flags, lmer_messages
from emoalign.analysis.kinds.base import CONSTANT_RATINGS as CONSTANT, AnalysisBase, KindResult, add_flag, register, tidy
from emoalign.analysis.study import HUMAN, Study
from emoalign.errors import EmoalignError, did_you_mean


class LmmOptions(AnalysisBase, ConvergenceOptions):
    """Linear mixed model (lme4 formula) over the machine-vs-human comparison frame.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: valence_emotion_lmm       # §4.2, Table 4's LMM p
          kind: lmm
          raters: [vlm]
          dimension: valence
          formula: rating ~ rater_type * emotion + (1|image_id)
          reference_levels: {emotion: angry, rater_type: human}
          contrast: rater_type
          contrast_by: [emotion]
    """

    kind: Literal["lmm"] = "lmm"
    formula: str = Field(description="lme4 formula over comparison-frame columns, e.g. "
                                     "`rating ~ rater_type * emotion + (1|image_id)`.")
    reference_levels: dict[str, str] = Field(default_factory=dict,
                                             description="Reference level per factor, e.g. {emotion: angry, rater_type: human}.")
    df_method: Literal["satterthwaite", "kenward_roger", "asymptotic"] = Field(
        "satterthwaite", description="Denominator df of the fixed-effect t tests (Kenward-Roger is slow on large data).")
    per_rater: bool = Field(True, description="One model per machine rater vs the human aggregate (true) or one model "
                                              "over all selected raters (false).")
    aggregate: Literal["mean", "trials"] = Field("mean", description="Humans as the image mean (mean) or raw trials "
                                                                     "(trials; adds column rater_id).")
    include_human: bool = Field(True, description="Include the human rows in the frame.")
    ci_level: float = Field(0.95, gt=0, lt=1, validation_alias=AliasChoices("ci_level", "conf_level"),
                            description="Confidence level of the Wald intervals (older specs' `conf_level` is read as "
                                        "the same).")
    reml: bool = Field(True, description="Fit by REML (true) or maximum likelihood (false).")
    contrast: str | None = Field(
        None, description="Also estimate simple effects of this factor with emmeans: each level minus its reference "
                          "(e.g. rater_type -> 'machine - human'), within every level of contrast_by.")
    contrast_by: list[str] = Field(default_factory=list,
                                   description="Columns the contrasts are computed within, e.g. [emotion]: the "
                                               "per-emotion machine - human bias implied by the model.")
    constant_p_values: bool = Field(
        False, description="Report df, p-values and CIs of models in which a machine rater gives one value to every "
                           "image (effectively singular; rows are flagged either way); false withholds them (NaN).")

    def r_formula(self) -> tuple[str, str]:
        return "formula", self.formula

    def r_names(self) -> list[tuple[tuple, str]]:
        return [*([(("contrast",), self.contrast)] if self.contrast else []),
                *((("contrast_by", i), n) for i, n in enumerate(self.contrast_by))]


def check(opts: LmmOptions, study: Study) -> list[Problem]:
    """The formula's variables are comparison-frame columns; each reference level is a level of its column."""
    cols = frame_columns(study, opts.aggregate)
    probs = formula_problems("formula", opts.formula, "the comparison frame", cols)
    for col, lev in opts.reference_levels.items():
        if col not in cols:
            probs.append(Problem("reference_levels", f"column {col!r} is not in the comparison frame"
                                 + did_you_mean(col, cols), (col,)))
            continue
        if col == "rater_type":
            levels = {"human", "machine"}
        elif col in study.stimuli.columns:
            levels = set(study.stimuli[col].dropna().astype(str))
        else:
            continue
        if str(lev) not in levels:
            probs.append(Problem("reference_levels", f"{lev!r} is not a level of {col!r}" + did_you_mean(lev, sorted(levels))
                                 + f" (levels: {', '.join(sorted(levels))})", (col,)))
    return probs


def _columns(opts: LmmOptions, frame: pd.DataFrame) -> list[str]:
    from emoalign.formula import formula_variables

    need = [*formula_variables(opts.formula), *opts.reference_levels]
    if opts.contrast:
        vars_ = set(formula_variables(opts.formula))
        absent = [c for c in [opts.contrast, *opts.contrast_by] if c not in vars_]
        if absent:
            raise EmoalignError(f"contrast/contrast_by name(s) {', '.join(absent)}, which are not in the formula",
                                hint="contrasts are computed from the fitted model; use factors of its fixed part")
    missing = [c for c in dict.fromkeys(need) if c not in frame.columns]
    if missing:
        raise EmoalignError(f"formula names column(s) {', '.join(missing)}, which the comparison frame lacks",
                            hint=f"columns: {', '.join(map(str, frame.columns))}")
    return list(dict.fromkeys(need))


#: columns withheld from constant-rating fits unless ``constant_p_values``
INFERENCE = ("df", "p_value", "conf_low", "conf_high")


def fit(opts: LmmOptions, frame: pd.DataFrame, r) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Fit one model in R; returns the tidy table, the glance row and the captured warnings/messages.

    Rows are flagged (``not converged``, ``singular fit``, ``constant machine ratings``) and, unless
    ``constant_p_values``, the df-based inference of constant-rating fits is withheld.
    """
    cols = _columns(opts, frame)
    if "rater_id" in frame.columns:  # aggregate: trials -- a machine rater is one more rater (its own rater_id)
        frame = frame.assign(rater_id=frame["rater_id"].where(frame["rater_id"].notna(), frame["rater"]))
    data = frame[cols].dropna()
    if data.empty:
        raise EmoalignError("no complete rows for the model", hint="check the subset and that the raters rated this dimension")
    res = r.call("fit_lmm", data, formula=opts.formula, reference_levels=opts.reference_levels or None,
                 df_method=opts.df_method, conf_level=opts.ci_level, reml=opts.reml,
                 contrast=opts.contrast, contrast_by=opts.contrast_by or None, **opts.lmer_args())
    table, glance = res.value["table"], res.value["glance"]
    flags = glance_flags(glance)
    machine = frame.loc[data.index]
    machine = machine[machine["rater"] != HUMAN] if "rater" in machine.columns else machine.iloc[0:0]
    if len(machine) > 1 and (machine.groupby("rater")["rating"].nunique() == 1).any():
        flags.append(CONSTANT)
    everything = np.ones(len(table), dtype=bool)
    for flag in flags:
        add_flag(table, everything, flag)
    warnings = lmer_messages(res)
    if CONSTANT in flags and not opts.constant_p_values:
        table.loc[table["p_value"].notna(), list(INFERENCE)] = np.nan
        warnings.append("a machine rater gives one value to every image: df, p-values and CIs withheld "
                        "(set constant_p_values: true to report them; rows are flagged)")
    return table, glance, warnings


def reference_levels(opts: LmmOptions, frame: pd.DataFrame) -> dict[str, str]:
    """The reference level of every categorical formula variable: the spec's, else R's default (first in sort order)."""
    from emoalign.formula import formula_variables

    out = {}
    for v in dict.fromkeys(formula_variables(opts.formula)):
        if v in frame.columns and v != "rating" and not pd.api.types.is_numeric_dtype(frame[v]) and not v.endswith("_id"):
            levels = sorted(str(x) for x in frame[v].dropna().unique())
            if levels:
                out[v] = str(opts.reference_levels.get(v, levels[0]))
    return out


@register("lmm", LmmOptions, compares="ratings_vs_human", check=check)
def run(opts: LmmOptions, study: Study, r=None) -> KindResult:
    """lme4/lmerTest model per machine rater (or over all raters): fixed effects, variances, fit statistics."""
    if r is None:
        from emoalign.analysis.rbridge import get_r
        r = get_r()
    if not opts.dimensions():
        raise EmoalignError(f"analysis {opts.id!r}: lmm needs a dimension", hint="add e.g. `dimension: valence`")
    machines = [x for x in study.resolve_raters(opts.raters) if x != HUMAN]
    sets = [[m] for m in machines] if opts.per_rater else [machines]
    if not machines:
        sets = [[HUMAN]]
    tables, glances, warnings, references = [], [], [], {}
    for dim in opts.dimensions():
        for raters in sets:
            label = ",".join(raters)
            frame = study.comparison_frame(dim, [x for x in raters if x != HUMAN] or None, aggregate=opts.aggregate,
                                           subset=opts.subset, include_human=opts.include_human) \
                if raters != [HUMAN] else study.comparison_frame(dim, [], aggregate=opts.aggregate, subset=opts.subset)
            missing = [c for c in opts.by if c not in frame.columns]
            if missing:
                raise EmoalignError(f"by names column(s) {', '.join(missing)}, which the comparison frame lacks",
                                    hint=f"columns: {', '.join(map(str, frame.columns))}")
            groups = frame.groupby(opts.by, observed=True, sort=True) if opts.by else [((), frame)]
            for key, g in groups:
                key = dict(zip(opts.by, (str(k) for k in (key if isinstance(key, tuple) else (key,)))))
                references.update(reference_levels(opts, g))
                t, gl, w = fit(opts, g, r)
                for part in (t, gl):
                    for k, v in reversed(list(key.items())):
                        part.insert(0, k, v)
                    part.insert(0, "dimension", dim)
                    part.insert(0, "rater", label)
                tables.append(t)
                glances.append(gl)
                where = " ".join([label, dim, *key.values()])
                warnings += [f"{where}: {x}" for x in w]
    table = pd.concat(tables, ignore_index=True)
    table["n"] = table["n"].astype("int64")
    return KindResult(tidy(table, ["rater", "dimension", *opts.by, "effect", "group", *opts.contrast_by]), warnings=warnings,
                      info={"formula": opts.formula, "df_method": opts.df_method, "reference_levels": references,
                            "ci": f"Wald: estimate +- t(df) x SE with {opts.df_method} df (no resampling)",
                            "ci_level": opts.ci_level, "n_models": len(tables),
                            "contrast": (f"emmeans {opts.contrast} (each level - reference)"
                                         + (f" within {', '.join(opts.contrast_by)}" if opts.contrast_by else "")
                                         + ", unadjusted") if opts.contrast else None},
                      extra={"glance": pd.concat(glances, ignore_index=True)})
