"""Kind ``human_percentile``: the machine as one more rater, placed among the individual human raters.

Tae, Park & Choi (2026) judge models "against the human ceiling" (the agreement of humans with each other)
but never place a model among the individual raters. Here each human rater's agreement with the
leave-that-rater-out human mean is set beside the machine's agreement with the *same* leave-one-out means
on the *same* images (:mod:`emoalign.analysis.stats.rater_percentile`). Rows per machine rater and
dimension (and ``by`` group), ``metric``:

* ``percentile_r`` / ``percentile_mae``: the share (0-100) of human raters whose r with the others' mean
  is lower (MAE higher) than the machine's on that rater's images, ties counted half; ``n`` = raters;
* ``machine_r`` / ``human_r``, ``machine_mae`` / ``human_mae``: the mean over raters of the per-rater
  agreement of the machine and of the humans themselves;
* ``alpha_humans`` / ``alpha_with_machine`` / ``alpha_change``: Krippendorff's alpha (``level``) of the
  human raters on the machine's images, without and with the machine added as one more coder, and the
  difference (paired: the same units in every replicate); ``n`` = pairable units.

CIs: the pigeonhole bootstrap (raters and images drawn independently, the panel's leave-one-out means held
fixed; Owen 2007), percentile intervals; for the two percentiles the hull of the percentile interval and
the one recentred on the estimate, because resampling images pulls their replicates towards 50 (see
:mod:`emoalign.analysis.stats.rater_percentile`; coverage checked over simulated studies by
``benchmarks/bench_percentile_ci.py``). Alpha: the bootstrap over units of the ``reliability`` kind. Images with fewer than
two human ratings have no leave-one-out mean and are left out. Extra table ``raters``: every human
rater's ``n`` (images), ``r_human``, ``r_machine``, ``mae_human``, ``mae_machine``.

References
----------
Tae, H., Park, J., & Choi, S. (2026). Do vision language models see emotions like humans?
Owen, A. B. (2007). The pigeonhole bootstrap. The Annals of Applied Statistics, 1(2), 386-411.
Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, ch. 10 and 13.
Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for Communication.
Hayes, A. F., & Krippendorff, K. (2007). Communication Methods and Measures, 1(1), 77-89.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from emoalign.analysis.kinds._shared import check_columns, finish, groups, require_dimensions, require_machine_raters
from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register
from emoalign.analysis.stats.krippendorff import Level, alpha_data, alpha_weighted, bootstrap_weights
from emoalign.analysis.stats.rater_percentile import SUMMARIES, Trials, loo_agreement, pigeonhole_bootstrap, summarise
from emoalign.analysis.stats.weighted import hull_percentile_ci, percentile_ci
from emoalign.analysis.study import Study
from emoalign.errors import EmoalignError

MACHINE_CODER = "\x00machine"


class HumanPercentileOptions(AnalysisBase):
    """The machine's rank among the human raters (leave-one-rater-out agreement) and alpha with it as a coder.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: human_percentile
          kind: human_percentile
          raters: [vlm, fer_va]
          dimension: [valence, arousal]
    """

    kind: Literal["human_percentile"] = "human_percentile"
    level: Level = Field("ordinal", description="Krippendorff level of measurement for alpha with/without the machine.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap replicates (raters and images for the percentiles, "
                                                   "images for alpha); 0 = no CI.")
    seed: int = Field(1, description="Seed of the bootstraps.")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the percentile bootstrap intervals.")


def _trials(tr: pd.DataFrame, machine: pd.Series) -> tuple[Trials, np.ndarray, np.ndarray]:
    """Integer-coded trials on images the machine rated and at least two humans rated; also rater and image ids."""
    tr = tr[tr["image_id"].isin(machine.index)]
    tr = tr[tr.groupby("image_id")["rating"].transform("size") >= 2]
    rcode, rids = pd.factorize(tr["rater_id"])
    icode, iids = pd.factorize(tr["image_id"])
    return (Trials(rater=rcode, image=icode, rating=tr["rating"].to_numpy(float),
                   machine=machine.reindex(iids).to_numpy(float)), np.asarray(rids), np.asarray(iids))


def alpha_with_without(tr: pd.DataFrame, machine: pd.Series, level: Level, reps: int, seed, ci_level: float) -> list[dict]:
    """Alpha of the human trials on the machine's images, with and without the machine as a coder (paired bootstrap)."""
    tr = tr[tr["image_id"].isin(machine.index)]
    units_h, values_h = tr["image_id"].to_numpy(), tr["rating"].to_numpy(float)
    units_w = np.concatenate([units_h, machine.index.to_numpy()])
    values_w = np.concatenate([values_h, machine.to_numpy(float)])
    dh, dw = alpha_data(units_h, values_h), alpha_data(units_w, values_w)
    if dh.n_units == 0 or len(dh.values) < 2:
        return []
    pos = pd.Index(dw.units).get_indexer(dh.units)  # human-pairable units are pairable with the machine too
    Wall = np.ones((1, dw.n_units))
    if reps > 0 and dw.n_units >= 2:
        Wall = np.vstack([Wall, bootstrap_weights(dw.n_units, reps, np.random.default_rng(seed))])
    a_h = alpha_weighted(dh, Wall[:, pos], level)
    a_w = alpha_weighted(dw, Wall, level)
    rows = []
    for metric, vals, n in (("alpha_humans", a_h, dh.n_units), ("alpha_with_machine", a_w, dw.n_units),
                            ("alpha_change", a_w - a_h, dw.n_units)):
        lo, hi, se = percentile_ci(vals[1:], ci_level) if len(vals) > 1 else (np.nan, np.nan, np.nan)
        rows.append(dict(metric=metric, estimate=float(vals[0]), std_error=se, conf_low=lo, conf_high=hi, n=n))
    return rows


@register("human_percentile", HumanPercentileOptions)
def run(opts: HumanPercentileOptions, study: Study, r=None) -> KindResult:
    """Each machine's percentile among human raters (leave-one-rater-out r and MAE) and alpha with/without it."""
    dims = require_dimensions(opts)
    raters = require_machine_raters(opts, study)
    rows, per_rater, warnings = [], [], []
    for di, dim in enumerate(dims):
        trials = study.human_trials(dim, opts.subset)
        check_columns(trials, opts.by, opts.id)
        if not pd.api.types.is_numeric_dtype(trials["rating"]):
            raise EmoalignError(f"analysis {opts.id!r}: dimension {dim!r} holds labels, not ratings",
                                hint="human_percentile compares numeric ratings (e.g. valence, arousal)")
        for ri, rater in enumerate(raters):
            machine = study.machine_ratings(rater, dim).dropna(subset=["value"]).set_index("image_id")["value"]
            if machine.empty:
                warnings.append(f"{opts.id}: rater {rater} has no {dim} ratings; skipped")
                continue
            for gi, (key, g) in enumerate(groups(trials, opts.by)):
                tr, rids, _ = _trials(g, machine)
                if tr.rater.size == 0:
                    warnings.append(f"{opts.id}: rater {rater}, {dim} {key or ''}: no image with two human ratings; skipped")
                    continue
                agree_all = loo_agreement(tr)
                agree = {k: v[0] for k, v in agree_all.items()}
                point = {k: float(v[0]) for k, v in summarise(agree_all).items()}
                reps = pigeonhole_bootstrap(tr, opts.bootstrap, seed=[opts.seed, di, ri, gi]) if opts.bootstrap > 0 else {}
                n_r = int(np.isfinite(agree["r_human"]).sum())
                undefined = tr.n_raters - n_r
                if undefined:
                    warnings.append(f"{opts.id}: {dim} {key or ''}: {undefined} human rater(s) with constant ratings or "
                                    "fewer than 3 images have no r; left out of percentile_r")
                for k in SUMMARIES:
                    if k not in reps:
                        lo = hi = se = np.nan
                    elif k.startswith("percentile"):
                        lo, hi, se = hull_percentile_ci(reps[k], point[k], opts.ci_level, bounds=(0, 100))
                    else:
                        lo, hi, se = percentile_ci(reps[k], opts.ci_level)
                    n = n_r if k.endswith("_r") else int(np.isfinite(agree["mae_human"]).sum())
                    rows.append({"rater": rater, "dimension": dim, **key, "metric": k, "estimate": point[k],
                                 "std_error": se, "conf_low": lo, "conf_high": hi, "n": n, "n_images": tr.n_images})
                for row in alpha_with_without(g, machine, opts.level, opts.bootstrap, [opts.seed, di, ri, gi], opts.ci_level):
                    rows.append({"rater": rater, "dimension": dim, **key, **row, "level": opts.level})
                per_rater.append(pd.DataFrame({"rater": rater, "dimension": dim, **key, "rater_id": rids,
                                               "n": agree["n"].astype(int), "r_human": agree["r_human"],
                                               "r_machine": agree["r_machine"], "mae_human": agree["mae_human"],
                                               "mae_machine": agree["mae_machine"]}))
    if not rows:
        raise EmoalignError(f"analysis {opts.id!r}: no machine rater shares images with at least two human ratings",
                            hint="check `raters`, `dimension` and `subset`")
    info = {"bootstrap": opts.bootstrap, "ci_level": opts.ci_level, "level": opts.level,
            "ci": {"percentiles": "pigeonhole bootstrap over raters and images (Owen 2007), hull of the percentile "
                                  "interval and the percentile interval recentred on the estimate",
                  "rater means": "pigeonhole bootstrap over raters and images, percentile",
                   "alpha": "bootstrap over images, percentile"}}
    return KindResult(finish(rows, ["rater", "dimension", *opts.by]), warnings=warnings, info=info,
                      extra={"raters": pd.concat(per_rater, ignore_index=True)})
