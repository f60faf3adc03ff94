"""Kind ``group_accuracy``: accuracy of each machine rater by any crossing of design columns.

One row per rater x ``by`` combination (e.g. ``by: [race, emotion]`` for the paper's race x
emotion accuracy, §4.5): ``accuracy`` with a Wilson score CI, ``n`` images and ``n_correct``. A
prediction missing or outside the study's label set counts as wrong (reported in a warning). The interval is analytic (no resampling).

References
----------
Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
JASA, 22(158), 209-212.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from emoalign.analysis.kinds._shared import check_columns, check_labels, correct_mask, finish, groups
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register
from emoalign.analysis.stats import wilson_ci
from emoalign.analysis.study import Study


class GroupAccuracyOptions(AnalysisBase):
    """Classification accuracy per group of design cells, with Wilson CIs.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: race_emotion_accuracy     # §4.5
          kind: group_accuracy
          raters: [vlm]
          by: [race, emotion]
    """

    kind: Literal["group_accuracy"] = "group_accuracy"
    reference: str | None = Field(None, description="Stimulus column with the true label (default: the study's reference).")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the Wilson intervals.")


@register("group_accuracy", GroupAccuracyOptions, compares="labels")
def run(opts: GroupAccuracyOptions, study: Study, r=None) -> KindResult:
    """Accuracy with Wilson CIs per rater and per crossing of the `by` design columns."""
    reference = opts.reference or study.reference
    lf = study.label_frame(opts.raters, reference=reference, subset=opts.subset)
    check_columns(lf, opts.by, opts.id)
    lf, warnings = check_labels(lf, [str(x) for x in study.emotions], opts.id, reference)
    lf = lf.assign(correct=correct_mask(lf["predicted"], lf["reference"]))
    rows = []
    for rater in dict.fromkeys(lf["rater"]):
        for key, g in groups(lf[lf["rater"] == rater], opts.by):
            n, k = len(g), int(g["correct"].sum())
            lo, hi = wilson_ci(k, n, opts.ci_level)
            rows.append(dict(rater=rater, **key, metric="accuracy", estimate=k / n if n else float("nan"),
                             conf_low=lo, conf_high=hi, n=n, n_correct=k))
    return KindResult(finish(rows, ["rater", *opts.by]), warnings=warnings,
                      info={"reference": reference, "ci": "Wilson score interval (analytic, no resampling)"})
