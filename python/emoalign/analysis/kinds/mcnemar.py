"""Kind ``mcnemar``: pairwise McNemar tests between machine raters' correctness on the same images.

For each pair (``rater``, ``rater2``) in the order the raters resolve, on the images both rated
(and per ``by`` group when given): ``n10`` = rater correct and rater2 wrong, ``n01`` = rater wrong
and rater2 correct; ``estimate`` = accuracy(rater) - accuracy(rater2) = (n10 - n01) / n. The
test is the chi-square form (continuity correction ``correct``, R ``mcnemar.test`` default TRUE)
or the exact binomial test (``exact``). ``p_adjusted`` adjusts over all pairs (and groups) of the
analysis with ``adjust`` (R ``p.adjust`` methods). A missing or invalid prediction is wrong. No intervals, nothing resampled.

References
----------
McNemar, Q. (1947). Psychometrika, 12(2), 153-157. Edwards, A. L. (1948). Psychometrika, 13,
185-187. Holm, S. (1979). Scand J Stat, 6, 65-70.
"""

from __future__ import annotations

from itertools import combinations
from typing import Literal

from pydantic import Field

from emoalign.analysis.kinds._shared import check_columns, check_labels, correct_mask, finish, groups
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register
from emoalign.analysis.stats import mcnemar, mcnemar_counts, p_adjust
from emoalign.analysis.study import Study
from emoalign.errors import EmoalignError


class McNemarOptions(AnalysisBase):
    """McNemar tests between raters' correctness on the same images.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: mcnemar                   # §3.5
          kind: mcnemar
          raters: [vlm, fer]
    """

    kind: Literal["mcnemar"] = "mcnemar"
    reference: str | None = Field(None, description="Stimulus column with the true label (default: the study's reference).")
    correct: bool = Field(True, description="Continuity correction (|b - c| - 1)^2/(b + c) (R mcnemar.test default).")
    exact: bool = Field(False, description="Exact binomial test on the discordant pairs instead of chi-square.")
    adjust: Literal["bonferroni", "holm", "hochberg", "BH", "BY", "none"] = Field(
        "holm", description="p-value adjustment across all pairs of this analysis (R p.adjust).")


@register("mcnemar", McNemarOptions, compares="labels")
def run(opts: McNemarOptions, study: Study, r=None) -> KindResult:
    """Pairwise McNemar tests of raters' correctness against the reference label."""
    reference = opts.reference or study.reference
    labels = [str(x) for x in study.emotions]
    lf = study.label_frame(opts.raters, reference=reference, subset=opts.subset)
    check_columns(lf, opts.by, opts.id)
    lf, warnings = check_labels(lf, labels, opts.id, reference)
    lf = lf.assign(correct=correct_mask(lf["predicted"], lf["reference"]))
    raters = list(dict.fromkeys(lf["rater"]))
    if len(raters) < 2:
        raise EmoalignError(f"analysis {opts.id!r}: McNemar compares raters pairwise and needs at least two; got "
                            f"{raters}", hint="list two or more machine raters (or a group) under `raters`")
    wide_cols = ["image_id", *opts.by]
    rows = []
    for a, b in combinations(raters, 2):
        pa = lf[lf["rater"] == a][[*wide_cols, "correct"]]
        pb = lf[lf["rater"] == b][["image_id", "correct"]]
        pair = pa.merge(pb, on="image_id", suffixes=("_a", "_b"))
        for key, g in groups(pair, opts.by):
            n10, n01 = mcnemar_counts(g["correct_a"], g["correct_b"])
            res = mcnemar(n10, n01, correct=opts.correct, exact=opts.exact)
            n = len(g)
            rows.append(dict(rater=a, rater2=b, **key, metric="mcnemar",
                             estimate=(n10 - n01) / n if n else float("nan"), statistic=res.statistic, df=res.df,
                             p_value=res.p_value, n=n, n01=n01, n10=n10, method=res.method))
    if not rows:
        raise EmoalignError(f"analysis {opts.id!r}: the raters share no images")
    table = finish(rows, ["rater", "rater2", *opts.by])
    table.insert(table.columns.get_loc("p_value") + 1, "p_adjusted", p_adjust(table["p_value"], opts.adjust))
    return KindResult(table, warnings=warnings, info={"reference": reference, "adjust": opts.adjust,
                                                      "ci": "none (tests only; no resampling)"})
