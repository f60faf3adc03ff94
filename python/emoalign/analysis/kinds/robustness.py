"""Kind ``robustness``: how much a model's answers move across prompt conditions (label order, persona,
strategy, open vocabulary, quantisation), each condition a rater compared with one baseline rater.

On the images every listed rater answered (within ``subset``), per condition rater against the baseline:

* ``flip_rate``: share of images whose step-1 label differs from the baseline's (a missing or invalid
  answer is one more category), Wilson interval;
* ``kappa_vs_baseline``: Cohen's kappa between the condition's and the baseline's labels (Fleiss-Cohen-Everitt
  Wald interval; z test of kappa = 0);
* ``mcnemar``: McNemar test of the condition's correctness against the baseline's (``estimate`` =
  accuracy change; ``n_gain``: images only the condition gets right, ``n_loss``: only the baseline);
* ``accuracy_change``, ``macro_f1_change``: condition minus baseline against the reference labels, with a
  percentile bootstrap interval over images (the resampled unit: an image drawn carries the answers of every
  rater to it, so the pairing is kept);
* ``shift``: mean paired rating difference (condition minus baseline) per dimension and intended emotion
  (``emotion`` empty: all images), t interval, Wilcoxon signed-rank test (R ``wilcox.test`` conventions);
  ``p_adjusted`` adjusts the per-emotion tests of the analysis together (``adjust``, Bonferroni by default;
  the all-image rows are not adjusted);

one ``cochran_q`` row tests that every rater (baseline and conditions) is right equally often; and, per rater
(the baseline too) and dimension, **error propagation** from a wrong step-1 label to the ratings (Tae, Park &
Choi 2026, §3.3): the rating bias against the human image mean on images whose label is right
(``bias_correct_label``) and wrong (``bias_wrong_label``), their difference (``bias_wrong_minus_correct``,
Welch t test and interval) and ``abs_error_excess_share`` = (MAE - MAE on right-label images) / MAE, the share
of the absolute error that would go if the wrong-label images erred as the right-label ones do. Where both
a context-carry and an independent rater are compared (the ``strategy`` of the machines table, or
``conditions.strategies``), ``carry_minus_independent`` is the paired mean of |error| under context carry
minus |error| under independent prompting, on the images whose context-carry label is wrong and on those
where it is right (``step1``), with a t interval and a Wilcoxon signed-rank test.

References
----------
McNemar, Q. (1947). Psychometrika, 12(2), 153-157. Cochran, W. G. (1950). The comparison of percentages in
matched samples. Biometrika, 37(3/4), 256-266. Cohen, J. (1960). Educational and Psychological Measurement,
20(1), 37-46. Fleiss, J. L., Cohen, J., & Everitt, B. S. (1969). Psychological Bulletin, 72(5), 323-327.
Wilcoxon, F. (1945). Biometrics Bulletin, 1, 80-83. Welch, B. L. (1947). Biometrika, 34(1/2), 28-35.
Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 13. Bhattacharyya, S., & Wang,
J. Z. (2025). Evaluating vision-language models for emotion recognition. arXiv:2502.05660.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from emoalign.analysis.checks import Problem
from emoalign.analysis.kinds._shared import bootstrap_rows, check_labels, correct_mask, finish
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register
from emoalign.analysis.stats import cochrans_q, cohen_kappa, mcnemar, mcnemar_counts, p_adjust, wilson_ci
from emoalign.analysis.stats import wilcoxon_signed_rank
from emoalign.analysis.study import Study
from emoalign.errors import EmoalignError, did_you_mean

#: the category of a missing or invalid step-1 answer in flips and kappa
INVALID = "<invalid>"
STRATEGIES = ("context_carry", "independent", "integrated", "open_vocabulary")


class Conditions(BaseModel):
    """Raters that are prompt conditions of one model, and the rater they are compared with."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="The model the conditions probe (a name for the report, e.g. gemma3).")
    raters: list[str] = Field(min_length=1, description="The condition raters, e.g. [gemma3@reversed, gemma3@layperson].")
    baseline: str = Field(description="The rater each condition is compared with, e.g. gemma3.")
    strategies: dict[str, Literal[STRATEGIES]] | None = Field(
        None, description="Prompting strategy of a rater (default: the machines table's strategy column); a "
                          "context_carry and an independent rater give the carry-minus-independent rows.")


class RobustnessOptions(AnalysisBase):
    """Label flips, agreement, accuracy and rating shifts of prompt conditions against a baseline, and error propagation.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: robustness
          kind: robustness
          conditions: {model: gemma3, baseline: gemma3, raters: [gemma3@reversed, gemma3@layperson]}
          dimension: [valence, arousal]
    """

    kind: Literal["robustness"] = "robustness"
    conditions: Conditions = Field(description="The model, its condition raters and the baseline rater "
                                               "(`raters` defaults to the baseline and the conditions).")
    reference: str | None = Field(None, description="Stimulus column with the true label (default: the study's reference).")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of every interval.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap replicates over images for the accuracy and macro-F1 "
                                                  "change intervals (0 = none).")
    seed: int = Field(1, description="Seed of the bootstrap.")
    adjust: Literal["bonferroni", "holm", "hochberg", "BH", "BY", "none"] = Field(
        "bonferroni", description="p-value adjustment across the per-emotion shift tests (R p.adjust).")
    correct: bool = Field(True, description="Continuity correction of the McNemar tests (R mcnemar.test default).")

    @model_validator(mode="after")
    def _raters_from_conditions(self):
        if "raters" not in self.model_fields_set:
            self.raters = list(dict.fromkeys([self.conditions.baseline, *self.conditions.raters]))
        return self

    def rater_names(self) -> list[str]:
        """Baseline first, then the conditions (each once)."""
        c = self.conditions
        return list(dict.fromkeys([c.baseline, *[r for r in c.raters if r != c.baseline]]))


def check(opts: RobustnessOptions, study: Study) -> list[Problem]:
    """Every condition rater and the baseline are machine raters of the study; no ``by`` (use ``subset``)."""
    problems = []
    known = set(study.machine_raters)
    for sub, name in [(("baseline",), opts.conditions.baseline),
                      *[(("raters", i), r) for i, r in enumerate(opts.conditions.raters)]]:
        if name not in known:
            problems.append(Problem("conditions", f"{name!r} is not a machine rater of the study"
                                    + did_you_mean(name, sorted(known)), sub))
    if opts.by:
        problems.append(Problem("by", "robustness compares conditions on the same images; use `subset` instead of `by`"))
    if len(opts.rater_names()) < 2:
        problems.append(Problem("conditions", "needs at least one condition rater besides the baseline", ("raters",)))
    return problems


def _t_interval(x: np.ndarray, level: float) -> tuple[float, float, float]:
    """(std_error, conf_low, conf_high) of the mean of ``x`` (Student t)."""
    n = len(x)
    if n < 2:
        return math.nan, math.nan, math.nan
    se = float(np.std(x, ddof=1) / math.sqrt(n))
    q = float(stats.t.ppf(1 - (1 - level) / 2, n - 1))
    m = float(np.mean(x))
    return se, m - q * se, m + q * se


def _paired_row(d: np.ndarray, level: float) -> dict:
    """Mean of paired differences with a t interval and a Wilcoxon signed-rank test."""
    d = d[~np.isnan(d)]
    se, lo, hi = _t_interval(d, level)
    w = wilcoxon_signed_rank(d) if len(d) else None
    return dict(estimate=float(np.mean(d)) if len(d) else math.nan, std_error=se, conf_low=lo, conf_high=hi,
                statistic=w.statistic if w else math.nan, p_value=w.p_value if w else math.nan, n=len(d),
                method=f"mean, t interval; Wilcoxon signed-rank ({w.method})" if w else "")


def _f1_replicates(ref: np.ndarray, pred: np.ndarray, labels: list[str], W: np.ndarray) -> np.ndarray:
    """Macro F1 per row of frequency weights ``W`` (labels with no reference item and no prediction left out,
    as :func:`emoalign.analysis.stats.macro_f1` does)."""
    f1s, used = [], []
    for lab in labels:
        tp = W @ ((ref == lab) & (pred == lab)).astype(float)
        denom = W @ (ref == lab).astype(float) + W @ (pred == lab).astype(float)
        f1s.append(np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0))
        used.append(denom > 0)
    f1s, used = np.array(f1s), np.array(used)
    return (f1s * used).sum(axis=0) / np.maximum(used.sum(axis=0), 1)


def _strategy_of(study: Study, opts: RobustnessOptions, rater: str) -> str | None:
    given = (opts.conditions.strategies or {}).get(rater)
    if given:
        return given
    m = study.machines
    if "strategy" not in m.columns:
        return None
    s = m.loc[m["rater"].astype(str) == rater, "strategy"].dropna().astype(str)
    return s.iat[0].removeprefix("simulated_") if len(s) else None


def _label_rows(opts, lf: pd.DataFrame, names: list[str], labels: list[str]) -> list[dict]:
    base = opts.conditions.baseline
    wide = lf.pivot(index="image_id", columns="rater", values="predicted")[names]
    ref = lf.drop_duplicates("image_id").set_index("image_id")["reference"].reindex(wide.index).astype(str)
    key = wide.map(lambda v: v if isinstance(v, str) and v in labels else INVALID)
    correct = {r: correct_mask(wide[r], ref) for r in names}
    n = len(wide)
    rows = []
    q = cochrans_q(np.column_stack([correct[r] for r in names]))
    rows.append(dict(rater=None, raters=",".join(names), metric="cochran_q", statistic=q.statistic, df=q.df,
                     p_value=q.p_value, n=n, method="Cochran's Q (chi-square), correctness of every rater"))
    refv, level = ref.to_numpy(dtype=object), opts.ci_level
    for r in names[1:]:
        flips = int((key[r] != key[base]).sum())
        lo, hi = wilson_ci(flips, n, level)
        rows.append(dict(rater=r, metric="flip_rate", estimate=flips / n, conf_low=lo, conf_high=hi, n=n,
                         method="share of images with another step-1 label than the baseline; Wilson interval"))
        k = cohen_kappa(key[base].to_numpy(), key[r].to_numpy(), labels=[*labels, INVALID], conf_level=level)
        rows.append(dict(rater=r, metric="kappa_vs_baseline", estimate=k.estimate, std_error=k.std_error,
                         statistic=k.statistic, p_value=k.p_value, conf_low=k.conf_low, conf_high=k.conf_high, n=n,
                         method="Cohen's kappa; Fleiss-Cohen-Everitt Wald interval, z test of kappa = 0"))
        gain, loss = mcnemar_counts(correct[r], correct[base])
        m = mcnemar(gain, loss, correct=opts.correct)
        rows.append(dict(rater=r, metric="mcnemar", estimate=(gain - loss) / n, statistic=m.statistic, df=m.df,
                         p_value=m.p_value, n=n, n_gain=gain, n_loss=loss,
                         method=f"McNemar ({m.method}) on correctness; estimate = accuracy change"))
        cr, cb = correct[r].astype(float), correct[base].astype(float)
        pr, pb = wide[r].to_numpy(dtype=object), wide[base].to_numpy(dtype=object)

        def stat(W, cr=cr, cb=cb, pr=pr, pb=pb):
            tot = W.sum(axis=1)
            return {"accuracy_change": (W @ cr - W @ cb) / tot,
                    "macro_f1_change": _f1_replicates(refv, pr, labels, W) - _f1_replicates(refv, pb, labels, W)}

        boot = bootstrap_rows(stat, n, opts.bootstrap, [opts.seed, *r.encode()], level)
        for metric, (est, se, lo, hi) in boot.items():
            rows.append(dict(rater=r, metric=metric, estimate=est, std_error=se, conf_low=lo, conf_high=hi, n=n,
                             method=f"condition minus baseline; percentile bootstrap over images (B = {opts.bootstrap})"))
    return rows


def _rating_rows(opts, study: Study, names: list[str], images: pd.Index, labelled: pd.DataFrame,
                 reference: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(shift rows, error-propagation rows, carry-minus-independent rows) of every dimension."""
    base = opts.conditions.baseline
    dims = opts.dimensions() or [d for d in ("valence", "arousal") if d in study.scales]
    emotion = study.stimuli.set_index("image_id")[reference].astype(str)
    level = opts.ci_level
    shifts, errors, carry = [], [], []
    strategies = {r: _strategy_of(study, opts, r) for r in names}
    for dim in dims:
        cf = study.comparison_frame(dim, names, subset=opts.subset)
        wide = cf.pivot_table(index="image_id", columns="rater", values="rating", aggfunc="first")
        wide = wide.reindex(index=images.intersection(wide.index))
        emo = emotion.reindex(wide.index)
        for r in names[1:]:
            if r not in wide or base not in wide:
                continue
            d = (wide[r] - wide[base]).to_numpy(dtype=float)
            shifts.append(dict(rater=r, dimension=dim, emotion=None, metric="shift", **_paired_row(d, level)))
            for e in study.emotions:
                sel = (emo == str(e)).to_numpy()
                if sel.any():
                    shifts.append(dict(rater=r, dimension=dim, emotion=str(e), metric="shift", **_paired_row(d[sel], level)))
        if "human" not in wide:
            continue
        err = {r: (wide[r] - wide["human"]).to_numpy(dtype=float) for r in names if r in wide}
        right = {r: labelled.loc[wide.index, r].to_numpy(dtype=bool) for r in err}
        for r, e in err.items():
            ok = ~np.isnan(e)
            ec, ew = e[ok & right[r]], e[ok & ~right[r]]
            for metric, x in (("bias_correct_label", ec), ("bias_wrong_label", ew)):
                se, lo, hi = _t_interval(x, level)
                errors.append(dict(rater=r, dimension=dim, metric=metric, estimate=float(np.mean(x)) if len(x) else math.nan,
                                   std_error=se, conf_low=lo, conf_high=hi, n=len(x),
                                   method="mean of rating minus human image mean; t interval"))
            row = dict(rater=r, dimension=dim, metric="bias_wrong_minus_correct", n=len(ec) + len(ew))
            if len(ec) >= 2 and len(ew) >= 2:
                t = stats.ttest_ind(ew, ec, equal_var=False)
                ci = t.confidence_interval(level)
                row.update(estimate=float(np.mean(ew) - np.mean(ec)), statistic=float(t.statistic), df=float(t.df),
                           p_value=float(t.pvalue), conf_low=float(ci.low), conf_high=float(ci.high),
                           std_error=float((np.mean(ew) - np.mean(ec)) / t.statistic) if t.statistic else math.nan)
            row["method"] = "Welch t test of the bias on wrong- vs right-label images"
            errors.append(row)
            mae, mae_ok = np.mean(np.abs(e[ok])) if ok.any() else math.nan, np.abs(ec).mean() if len(ec) else math.nan
            errors.append(dict(rater=r, dimension=dim, metric="abs_error_excess_share",
                               estimate=float((mae - mae_ok) / mae) if mae else math.nan, n=int(ok.sum()),
                               method="(MAE - MAE on right-label images) / MAE"))
        for rc in [r for r in err if strategies.get(r) == "context_carry"]:
            for ri in [r for r in err if strategies.get(r) == "independent"]:
                diff = np.abs(err[rc]) - np.abs(err[ri])
                for step1, sel in (("wrong", ~right[rc]), ("correct", right[rc])):
                    carry.append(dict(rater=rc, rater2=ri, dimension=dim, step1=step1,
                                      metric="carry_minus_independent", **_paired_row(diff[sel], level)))
    per_emotion = [i for i, row in enumerate(shifts) if row["emotion"] is not None]
    if per_emotion:
        adj = p_adjust(np.array([shifts[i]["p_value"] for i in per_emotion], dtype=float), opts.adjust)
        for i, p in zip(per_emotion, adj):
            shifts[i]["p_adjusted"] = float(p)
    return shifts, errors, carry


@register("robustness", RobustnessOptions, check=check)
def run(opts: RobustnessOptions, study: Study, r=None) -> KindResult:
    """Flip rates, kappa, McNemar and Cochran's Q, accuracy changes, rating shifts and error propagation."""
    if opts.by:
        raise EmoalignError(f"analysis {opts.id!r}: robustness has no `by`", hint="use `subset` to restrict the images")
    names = opts.rater_names()
    if len(names) < 2:
        raise EmoalignError(f"analysis {opts.id!r}: conditions need at least one rater besides the baseline",
                            hint="list the condition raters under conditions.raters")
    reference = opts.reference or study.reference
    labels = [str(x) for x in study.emotions]
    lf = study.label_frame(names, reference=reference, subset=opts.subset)
    lf, warnings = check_labels(lf, labels, opts.id, reference)
    per_rater = lf.groupby("rater")["image_id"].apply(set)
    missing = [x for x in names if x not in per_rater.index]
    if missing:
        raise EmoalignError(f"analysis {opts.id!r}: rater(s) {', '.join(missing)} have no labelled images",
                            hint="check the machines table holds their rows (and the subset keeps some)")
    common = set.intersection(*[per_rater[x] for x in names])
    dropped = len(set.union(*[per_rater[x] for x in names])) - len(common)
    if dropped:
        warnings.append(f"{opts.id}: {dropped} image(s) not answered by every compared rater left out; "
                        f"{len(common)} compared")
    if not common:
        raise EmoalignError(f"analysis {opts.id!r}: no image was answered by every compared rater")
    lf = lf[lf["image_id"].isin(common)]
    rows = _label_rows(opts, lf, names, labels)
    wide = lf.pivot(index="image_id", columns="rater", values="predicted")[names]
    ref = lf.drop_duplicates("image_id").set_index("image_id")["reference"].reindex(wide.index)
    labelled = pd.DataFrame({x: correct_mask(wide[x], ref) for x in names}, index=wide.index)
    shifts, errors, carry = _rating_rows(opts, study, names, wide.index, labelled, reference)
    table = finish(rows + shifts + errors + carry, ["rater", "rater2", "raters", "dimension", "emotion", "step1"])
    table.insert(0, "model", opts.conditions.model)
    table.insert(1, "baseline", opts.conditions.baseline)
    for col in ("n_gain", "n_loss"):
        if col in table:
            table[col] = table[col].astype("Int64")
    strategies = {x: _strategy_of(study, opts, x) for x in names}
    if not any(s == "context_carry" for s in strategies.values()) or not any(s == "independent" for s in strategies.values()):
        warnings.append(f"{opts.id}: no context_carry and independent rater pair among the conditions; the "
                        "carry-minus-independent rows are left out")
    info = {"reference": reference, "labels": labels, "baseline": opts.conditions.baseline, "strategies": strategies,
            "images": len(common), "ci_level": opts.ci_level, "adjust": opts.adjust,
            "ci": {"flip_rate": "Wilson score interval (analytic)",
                   "kappa_vs_baseline": "Wald interval, Fleiss-Cohen-Everitt SE (analytic)",
                   "accuracy_change": f"percentile bootstrap over images (B = {opts.bootstrap}, seed {opts.seed}); "
                                      "an image carries every rater's answers (paired)",
                   "macro_f1_change": "as accuracy_change",
                   "shift": "Student t interval of the mean paired difference",
                   "bias_correct_label": "Student t interval", "bias_wrong_label": "Student t interval",
                   "bias_wrong_minus_correct": "Welch t interval",
                   "carry_minus_independent": "Student t interval of the mean paired difference",
                   "resampling": "images (accuracy_change, macro_f1_change only)"}}
    return KindResult(table, warnings=warnings, info=info)
