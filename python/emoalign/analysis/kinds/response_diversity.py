"""Kind ``response_diversity``: stereotyped responding per rater x group (paper Table 7, §4.4).

For every rater (the selected machine raters plus ``human``), dimension and ``by`` group (default:
emotion): ``n_unique`` (number of distinct values), ``sd`` (n - 1 denominator), ``mean`` and
``sd_ratio`` = rater SD / human SD in the same group (1 for the human row). Machine values are
one rating per image. Human values are, with ``human_sd: trials`` (default, as Table 7), the raw
trials of the group's images; with ``human_sd: image_mean``, the per-image means (the SD the
machine's per-image ratings are compared with in Tables 3 and 5). ``n`` counts the values.

References
----------
Tae, Park & Choi (2026), Table 7 and §4.4 (stereotyped responding, dimensional collapse).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from emoalign.analysis.kinds._shared import check_columns, finish, groups, require_dimensions
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register
from emoalign.analysis.study import HUMAN, Study


class ResponseDiversityOptions(AnalysisBase):
    """Response diversity: distinct values, SD and SD ratio to the humans per group.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: response_diversity        # Table 7
          kind: response_diversity
          raters: [vlm, fer_va]
          dimension: [valence, arousal]
    """

    kind: Literal["response_diversity"] = "response_diversity"
    by: list[str] = Field(default_factory=lambda: ["emotion"],
                          description="Design columns defining the groups (default [emotion]).")
    human_sd: Literal["trials", "image_mean"] = Field(
        "trials", description="Human values: raw trials (Table 7) or per-image means.")


def diversity_rows(x: np.ndarray) -> dict[str, float]:
    """n_unique, sd (ddof 1; NaN below 2 values) and mean of one rater's values in one group."""
    x = x[~np.isnan(x)]
    k = len(np.unique(x))
    sd = (0.0 if k == 1 else float(x.std(ddof=1))) if len(x) > 1 else math.nan   # exact 0 for constant values
    return {"n_unique": float(k), "sd": sd,
            "mean": float(x.mean()) if len(x) else math.nan, "_n": len(x)}


@register("response_diversity", ResponseDiversityOptions, compares="ratings_vs_human")
def run(opts: ResponseDiversityOptions, study: Study, r=None) -> KindResult:
    """Unique values, SD, mean and SD ratio to humans per rater x group."""
    rows = []
    aggregate = "trials" if opts.human_sd == "trials" else "mean"
    for dim in require_dimensions(opts):
        cf = study.comparison_frame(dim, opts.raters, aggregate=aggregate, subset=opts.subset)
        check_columns(cf, opts.by, opts.id)
        raters = [HUMAN] + [x for x in dict.fromkeys(cf["rater"]) if x != HUMAN]
        human_sd = {}
        for rater in raters:
            for key, g in groups(cf[cf["rater"] == rater], opts.by):
                s = diversity_rows(g["rating"].to_numpy(float))
                gk = tuple(key.values())
                if rater == HUMAN:
                    human_sd[gk] = s["sd"]
                h = human_sd.get(gk, math.nan)
                ratio = s["sd"] / h if (h and not math.isnan(h)) else math.nan
                base = {"rater": rater, "dimension": dim, **key, "n": s["_n"]}
                rows += [{**base, "metric": "n_unique", "estimate": s["n_unique"]},
                         {**base, "metric": "sd", "estimate": s["sd"]},
                         {**base, "metric": "mean", "estimate": s["mean"]},
                         {**base, "metric": "sd_ratio", "estimate": ratio}]
    table = finish(rows, ["rater", "dimension", *opts.by])
    return KindResult(table, info={"human_sd": opts.human_sd, "ci": "none (descriptive; no resampling)"})
