"""Kind ``classification``: each machine rater's predicted emotion against a reference label.

Rows (per rater, and per ``by`` group when given):

* overall (``emotion`` NA): ``accuracy`` (Wilson CI), ``macro_f1`` (mean F1 over the labels that occur as a
  reference or a prediction; a label with neither is left out with a warning), ``cohen_kappa`` (asymptotic
  Fleiss-Cohen-Everitt SE and Wald CI; ``statistic`` = z against kappa = 0 with the null SE);
* per emotion (``emotion`` = true label): ``accuracy`` (= recall, Wilson CI, ``n`` = images of that
  emotion), ``precision`` (Wilson CI, ``n`` = predictions of that emotion), ``recall``, ``f1``;
* confusion (``emotion`` = true label, ``predicted``): ``confusion_count`` and ``confusion_prop``
  (row proportion with its Wilson CI; ``n`` = row total).

The label set is ``study.emotions``; a prediction that is missing or outside it counts as wrong
(it becomes the extra predicted category ``(invalid)`` in the confusion matrix and in kappa) and is
reported in a warning. Every interval is analytic (no resampling).

References
----------
Cohen, J. (1960). Educational and Psychological Measurement, 20(1), 37-46. Fleiss, J. L., Cohen,
J., & Everitt, B. S. (1969). Psychological Bulletin, 72(5), 323-327. Wilson, E. B. (1927). JASA,
22, 209-212.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from emoalign.analysis.kinds._shared import check_columns, check_labels, correct_mask, finish, groups
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register
from emoalign.analysis.stats import (
    INVALID_LABEL, absent_labels, cohen_kappa, confusion_matrix, macro_f1, per_class_metrics, wilson_ci,
)
from emoalign.analysis.study import Study
from emoalign.errors import EmoalignError


#: how each interval is computed (manifest info); nothing is resampled
INTERVALS = {"accuracy": "Wilson score interval (analytic)", "precision": "Wilson score interval (analytic)",
             "recall": "Wilson score interval (analytic)", "confusion_prop": "Wilson score interval (analytic)",
             "cohen_kappa": "Wald interval with the asymptotic SE of Fleiss, Cohen & Everitt 1969 (analytic)",
             "resampling": "none"}


class ClassificationOptions(AnalysisBase):
    """Categorical agreement with the intended labels (accuracy, macro F1, Cohen's kappa, confusion matrix).

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: classification            # Tables 1 and 2
          kind: classification
          raters: [vlm, fer]
    """

    kind: Literal["classification"] = "classification"
    reference: str | None = Field(None, description="Stimulus column with the true label (default: the study's "
                                                    "reference, normally the intended emotion).")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the Wilson and kappa intervals.")
    zero_division: float = Field(0.0, description="Precision/recall/F1 value when its denominator is 0 "
                                                  "(0, as sklearn's default).")
    confusion: bool = Field(True, description="Include confusion-matrix rows (counts and row proportions).")


def _rows_for(g, labels, opts: ClassificationOptions) -> list[dict]:
    t, p = g["reference"].astype(str).to_numpy(), g["predicted"].to_numpy(dtype=object)
    n = len(g)
    correct = int(correct_mask(g["predicted"], g["reference"]).sum())
    lo, hi = wilson_ci(correct, n, opts.ci_level)
    rows = [dict(emotion=None, predicted=None, metric="accuracy", estimate=correct / n if n else float("nan"),
                 conf_low=lo, conf_high=hi, n=n)]
    rows.append(dict(emotion=None, predicted=None, metric="macro_f1",
                     estimate=macro_f1(t, p, labels, opts.zero_division), n=n))
    k = cohen_kappa(t, p, labels=labels, conf_level=opts.ci_level)
    rows.append(dict(emotion=None, predicted=None, metric="cohen_kappa", estimate=k.estimate, std_error=k.std_error,
                     statistic=k.statistic, p_value=k.p_value, conf_low=k.conf_low, conf_high=k.conf_high, n=n))
    for m in per_class_metrics(t, p, labels, opts.zero_division):
        rlo, rhi = wilson_ci(m.tp, m.support, opts.ci_level)
        plo, phi = wilson_ci(m.tp, m.tp + m.fp, opts.ci_level)
        base = dict(emotion=m.label, predicted=None)
        rows += [
            {**base, "metric": "accuracy", "estimate": m.recall, "conf_low": rlo, "conf_high": rhi, "n": m.support},
            {**base, "metric": "precision", "estimate": m.precision, "conf_low": plo, "conf_high": phi,
             "n": m.tp + m.fp},
            {**base, "metric": "recall", "estimate": m.recall, "conf_low": rlo, "conf_high": rhi, "n": m.support},
            {**base, "metric": "f1", "estimate": m.f1, "n": m.support},
        ]
    if opts.confusion:
        cm = confusion_matrix(t, p, labels)
        for true in cm.index:
            total = int(cm.loc[true].sum())
            for pred in cm.columns:
                c = int(cm.loc[true, pred])
                rows.append(dict(emotion=str(true), predicted=str(pred), metric="confusion_count", estimate=float(c),
                                 n=total))
                clo, chi = wilson_ci(c, total, opts.ci_level)
                rows.append(dict(emotion=str(true), predicted=str(pred), metric="confusion_prop",
                                 estimate=c / total if total else float("nan"), conf_low=clo, conf_high=chi, n=total))
    return rows


@register("classification", ClassificationOptions, compares="labels")
def run(opts: ClassificationOptions, study: Study, r=None) -> KindResult:
    """Accuracy, macro F1, Cohen's kappa, per-emotion metrics and confusion matrix per machine rater."""
    if "emotion" in opts.by or "predicted" in opts.by:
        raise EmoalignError(f"analysis {opts.id!r}: `by` cannot contain 'emotion' or 'predicted' for classification "
                            "(per-emotion rows are always included)",
                            hint="use group_accuracy for accuracy by crossings of design columns")
    reference = opts.reference or study.reference
    labels = [str(x) for x in study.emotions]
    lf = study.label_frame(opts.raters, reference=reference, subset=opts.subset)
    check_columns(lf, opts.by, opts.id)
    lf, warnings = check_labels(lf, labels, opts.id, reference)
    rows = []
    for rater in dict.fromkeys(lf["rater"]):
        rg = lf[lf["rater"] == rater]
        for key, g in groups(rg, opts.by):
            if len(g) == 0:
                continue
            for row in _rows_for(g, labels, opts):
                rows.append({"rater": rater, **key, **row})
            absent = absent_labels(g["reference"].astype(str), g["predicted"], labels)
            if absent:
                where = f"rater {rater}" + "".join(f", {k} {v}" for k, v in key.items())
                warnings.append(f"{opts.id}: {where}: label(s) {', '.join(absent)} have no reference items and no "
                                f"predictions; macro F1 averages the other {len(labels) - len(absent)} labels")
    if not rows:
        raise EmoalignError(f"analysis {opts.id!r}: no labelled images left after the subset")
    table = finish(rows, ["rater", *opts.by, "emotion", "predicted"])
    return KindResult(table, warnings=warnings, info={"reference": reference, "labels": labels,
                                                      "invalid_label": INVALID_LABEL, "ci": INTERVALS,
                                                      "ci_level": opts.ci_level})
