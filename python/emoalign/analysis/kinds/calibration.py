"""Kind ``calibration``: map a machine rater's dimensional ratings onto the human scale, judged on held-out images.

Tae, Park & Choi (2026, §5.2) propose "a simple affine transformation mapping VLM output distributions to
human output distributions per emotion category" to correct both the mean shift and the variance
inflation of VLM ratings, and never test it. This kind does, with three maps
(:mod:`emoalign.analysis.stats.calibration`): ``affine`` (mean and SD matched: the proposal), ``linear``
(least squares) and ``isotonic``, fitted per emotion category (``per: predicted``: the label the machine
itself gave, usable on new faces; ``per: reference``: the intended emotion, an upper bound that needs
labelled faces) or globally (``per: none``). Targets are the human image means.

Everything is cross-fitted: images are split into ``folds`` K-fold, grouped by ``fold_by`` (default
``identity_id``) so no face identity is in both training and test (:func:`grouped_folds`); each fold is
calibrated by maps fitted on the other folds. Reported on those held-out values only, overall and per
``by`` group (default the intended ``emotion``), with ``stage`` = ``before`` (raw ratings), ``after``
(calibrated) and ``change`` (after - before, paired):

* ``mae``, ``rmse``, ``pearson_r``, ``mean_diff`` (bias, machine - human), ``sd_ratio`` (machine SD /
  human SD),

each with a percentile bootstrap CI over images (``bootstrap`` replicates; the same draws for before and
after, so ``change`` is a paired difference; Efron & Tibshirani 1993). ``n`` = images with a human mean.

The out-of-fold calibrated ratings become the derived rater ``<rater>:calibrated`` (``suffix``), which
analyses after this one in the spec can name like any rater (only the calibrated dimensions are filled).
Extra tables: ``ratings`` (rater, dimension, image_id, fold, group, machine, calibrated, human) and
``maps`` (every fitted map: fold, group, slope, intercept, training size).

References
----------
Tae, H., Park, J., & Choi, S. (2026). Do vision language models see emotions like humans? §5.2.
Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall, ch. 13.
Hastie, T., Tibshirani, R., & Friedman, J. (2009). The Elements of Statistical Learning (2nd ed.), §7.10.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from emoalign.analysis.kinds._shared import (
    require_machine_raters,
    HeldOutOptions, bootstrap_rows, check_held_out, check_columns, finish, fold_text, groups, image_folds, require_dimensions,
)
from emoalign.analysis.kinds.base import DerivedRater, KindResult, register
from emoalign.analysis.stats.calibration import cross_fit
from emoalign.analysis.stats.weighted import agreement_replicates
from emoalign.analysis.study import EXPECTED_SUFFIX, HUMAN, Study
from emoalign.errors import EmoalignError

METRICS = ("mae", "rmse", "pearson_r", "mean_diff", "sd_ratio")


class CalibrationOptions(HeldOutOptions):
    """Cross-fitted calibration of machine ratings onto the human scale (the paper's §5.2 proposal).

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: calibration               # §5.2
          kind: calibration
          raters: [vlm]
          dimension: [valence, arousal]
          method: affine
          fold_by: [race, gender, identity_id]
    """

    kind: Literal["calibration"] = "calibration"
    method: Literal["affine", "linear", "isotonic"] = Field(
        "affine", description="affine: match the human mean and SD (Tae et al. 2026 §5.2); linear: least squares of the "
                              "human mean on the rating; isotonic: non-decreasing step function (least squares).")
    per: Literal["predicted", "reference", "none"] = Field(
        "predicted", description="One map per emotion category: `predicted` = the label the machine gave (usable on new "
                                 "faces), `reference` = the intended emotion (needs labelled faces; an upper bound), "
                                 "`none` = one global map.")
    min_group: int = Field(10, ge=2, description="Fewest training images a category needs for a map of its own; "
                                                 "smaller ones use the global map of the fold.")
    clip: bool = Field(True, description="Clip calibrated ratings to the dimension's scale (study.scales).")
    suffix: str = Field(":calibrated", pattern=r"^:[A-Za-z0-9_.-]+$",
                        description="The calibrated ratings become rater `<rater><suffix>` for the analyses after this one.")
    by: list[str] = Field(default_factory=lambda: ["emotion"],
                          description="Design columns to report the held-out metrics per, besides overall.")

    def produces(self, raters: Sequence[str]) -> list[str]:
        return [f"{r}{self.suffix}" for r in raters]


def _frame(study: Study, rater: str, dim: str, opts: CalibrationOptions, folds: pd.Series) -> pd.DataFrame:
    """One row per image the rater rated: machine rating, human mean (NaN if none), map group, fold, design."""
    cf = study.comparison_frame(dim, [rater], aggregate="mean", subset=opts.subset)
    check_columns(cf, opts.by, opts.id)
    human = cf[cf["rater"] == HUMAN].set_index("image_id")["rating"]
    df = cf[cf["rater"] == rater].rename(columns={"rating": "machine"}).copy()
    df["human"] = df["image_id"].map(human)
    df["fold"] = df["image_id"].map(folds).astype(int)
    if opts.per == "predicted":
        lab = study.machine_ratings(rater.removesuffix(EXPECTED_SUFFIX), "emotion").set_index("image_id")["value"]
        df["group"] = df["image_id"].map(lab)
        if df["group"].isna().all():
            raise EmoalignError(f"analysis {opts.id!r}: rater {rater} gives no emotion labels, so there is no predicted "
                                "category to calibrate per", hint="use `per: reference` (intended emotion) or `per: none`")
    elif opts.per == "reference":
        df["group"] = df[study.reference].astype(str)
    else:
        df["group"] = None
    return df.reset_index(drop=True)


def _metric_rows(machine, calibrated, human, reps, seed, level) -> list[dict]:
    def stat(W):
        b, a = agreement_replicates(machine, human, W), agreement_replicates(calibrated, human, W)
        out = {}
        for m in METRICS:
            out[("before", m)], out[("after", m)], out[("change", m)] = b[m], a[m], a[m] - b[m]
        return out

    res = bootstrap_rows(stat, len(human), reps, seed, level)
    return [dict(stage=stage, metric=m, estimate=est, std_error=se, conf_low=lo, conf_high=hi, n=len(human))
            for (stage, m), (est, se, lo, hi) in res.items()]


@register("calibration", CalibrationOptions, check=check_held_out)
def run(opts: CalibrationOptions, study: Study, r=None) -> KindResult:
    """Affine/linear/isotonic calibration per emotion, K-fold by identity; held-out MAE, RMSE, r, bias, SD ratio."""
    dims = require_dimensions(opts)
    raters = require_machine_raters(opts, study)
    folds = image_folds(opts, study.stimuli)
    rows, ratings, maps, warnings = [], [], [], []
    derived: dict[str, pd.DataFrame] = {}
    for ri, rater in enumerate(raters):
        for di, dim in enumerate(dims):
            df = _frame(study, rater, dim, opts, folds)
            if df["human"].notna().sum() < 2 * opts.folds:
                warnings.append(f"{opts.id}: rater {rater}, {dim}: fewer than {2 * opts.folds} images with human ratings; skipped")
                continue
            grp = None if opts.per == "none" else df["group"].to_numpy(dtype=object)
            try:
                cal, fitted = cross_fit(df["machine"].to_numpy(float), df["human"].to_numpy(float), df["fold"].to_numpy(),
                                        grp, method=opts.method, min_group=opts.min_group)
            except ValueError as exc:
                raise EmoalignError(f"analysis {opts.id!r}: rater {rater}, {dim}: {exc}",
                                    hint="lower `folds` or check that the rater and the humans share images") from None
            if opts.clip and dim in study.scales:
                cal = np.clip(cal, *study.scales[dim])
            df["calibrated"] = cal
            fallback = [m for m in fitted if m["group"] is None and opts.per != "none"]
            if fallback:
                warnings.append(f"{opts.id}: rater {rater}, {dim}: {sum(m['n_test'] for m in fallback)} held-out image(s) "
                                f"in categories with fewer than {opts.min_group} training images used the fold's global map")
            maps += [{"rater": rater, "dimension": dim, "method": opts.method, **m} for m in fitted]
            keep = ["image_id", "fold", "group", "machine", "calibrated", "human"]
            out = df[keep].copy()
            out.insert(0, "dimension", dim)
            out.insert(0, "rater", rater)
            out["group"] = out["group"].astype(object).where(out["group"].notna(), None)
            ratings.append(out)
            part = df[["image_id", "calibrated"]].rename(columns={"calibrated": dim})
            derived[rater] = part if rater not in derived else derived[rater].merge(part, on="image_id", how="outer")
            ev = df[df["human"].notna()]
            for gi, (key, g) in enumerate(groups(ev, opts.by)):
                for row in _metric_rows(g["machine"].to_numpy(float), g["calibrated"].to_numpy(float),
                                        g["human"].to_numpy(float), opts.bootstrap, [opts.seed, ri, di, gi], opts.ci_level):
                    rows.append({"rater": rater, "dimension": dim, **{c: None for c in opts.by}, **key, **row})
            for row in ([] if not opts.by else
                        _metric_rows(ev["machine"].to_numpy(float), ev["calibrated"].to_numpy(float),
                                     ev["human"].to_numpy(float), opts.bootstrap, [opts.seed, ri, di, 9999], opts.ci_level)):
                rows.append({"rater": rater, "dimension": dim, **{c: None for c in opts.by}, **row})
    if not rows:
        raise EmoalignError(f"analysis {opts.id!r}: nothing to calibrate (no rater had enough human-rated images)",
                            hint="check `raters`, `dimension` and `subset`")
    table = finish(rows, ["rater", "dimension", *opts.by, "stage"])
    how = (f"{opts.method} map per {'predicted emotion' if opts.per == 'predicted' else 'intended emotion' if opts.per == 'reference' else 'image set'}"
           f", {opts.folds}-fold cross-fitted by {fold_text(opts.fold_by)} (analysis {opts.id})")
    new = [DerivedRater(name=f"{rater}{opts.suffix}", rows=d, source=rater,
                        description=f"{rater} calibrated: {how}") for rater, d in derived.items()]
    info = {"method": opts.method, "per": opts.per, "folds": opts.folds, "fold_by": opts.fold_by,
            "bootstrap": opts.bootstrap, "ci_level": opts.ci_level, "ci": "percentile bootstrap over images",
            "derived_raters": [d.name for d in new]}
    return KindResult(table, warnings=warnings, info=info, raters=new,
                      extra={"ratings": pd.concat(ratings, ignore_index=True), "maps": pd.DataFrame(maps)})
