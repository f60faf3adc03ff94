"""Kind ``prior_correction``: remove a rater's label prior from its emotion probabilities (contextual calibration).

VLM emotion labels collapse onto head classes: Tae, Park & Choi (2026, §4.1, §5.3) find 71% of sad faces
called neutral by Gemma3; long-tail collapse of VLM emotion labels is a wider finding. If part of that
is a prior over labels rather than evidence in the face, dividing the rater's label probabilities
``p_emotion_<label>`` by an estimate of its prior and re-taking the argmax removes it (Zhao et al. 2021;
:mod:`emoalign.analysis.stats.prior_correction`):

* ``prior: mean``: the prior is the mean probability vector over images, estimated on the training folds
  only (images ``folds``-fold, grouped by ``fold_by`` as in ``calibration``) and applied to the held-out fold;
* ``prior: content_free``: the mean probability vector of the rater's answers to content-free inputs
  (e.g. a blank image) listed in ``content_free_images`` (rows of the rater's run whose ``image_id`` is
  not a stimulus; Zhao et al.'s contextual calibration).

Reported on the study's images (each held out once), with ``stage`` = ``before`` (argmax of the raw
probabilities), ``after`` (argmax of the corrected ones) and ``change`` (after - before, paired):
``accuracy`` (the change row carries McNemar's test of the paired correctness, ``statistic``/``p_value``),
``macro_f1``, ``cohen_kappa``, and per intended emotion (``emotion``) ``recall``; all with percentile
bootstrap CIs over images (the same draws before and after). ``by`` repeats them per design group.

The corrected labels and probabilities become the derived rater ``<rater>:prior_corrected`` (``suffix``)
for the analyses after this one (only ``emotion`` and ``p_emotion_*`` are filled). Extra tables:
``ratings`` (image_id, fold (0 for a content-free prior, which is fitted to no image), reference, before,
after) and ``priors`` (the prior of every fold). A rater without
``p_emotion_*`` probabilities is an error.

References
----------
Zhao, Z., Wallace, E., Feng, S., Klein, D., & Singh, S. (2021). Calibrate before use: Improving few-shot
performance of language models. ICML 2021, 12697-12706.
Saerens, M., Latinne, P., & Decaestecker, C. (2002). Neural Computation, 14(1), 21-41.
Tae, H., Park, J., & Choi, S. (2026). Do vision language models see emotions like humans? §4.1, §5.3.
McNemar, Q. (1947). Psychometrika, 12(2), 153-157. Efron, B., & Tibshirani, R. J. (1993). An Introduction
to the Bootstrap, ch. 13.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from emoalign.analysis.kinds._shared import (
    require_machine_raters,
    HeldOutOptions, bootstrap_rows, check_held_out, check_columns, finish, fold_text, groups, image_folds,
)
from emoalign.analysis.kinds.base import DerivedRater, KindResult, register
from emoalign.analysis.stats import mcnemar, mcnemar_counts
from emoalign.analysis.stats.prior_correction import correct as divide_prior, cross_fit_prior, estimate_prior
from emoalign.analysis.stats.weighted import confusion_metrics, confusion_replicates
from emoalign.analysis.study import EXPECTED_SUFFIX, Study, apply_subset
from emoalign.data.schemas import PROB_PREFIX
from emoalign.errors import EmoalignError, format_examples


class PriorCorrectionOptions(HeldOutOptions):
    """Contextual calibration of label probabilities (Zhao et al. 2021), judged on held-out folds.

    Examples
    --------
    In a spec's ``analyses`` (YAML)::

        - id: prior_correction
          kind: prior_correction
          raters: [vlm]
          prior: mean
    """

    kind: Literal["prior_correction"] = "prior_correction"
    prior: Literal["mean", "content_free"] = Field(
        "mean", description="mean: the rater's mean probability vector over the training folds' images; content_free: "
                            "its mean answer to the content-free inputs in `content_free_images`.")
    content_free_images: list[str] = Field(
        default_factory=list, description="image_id(s) of content-free inputs (e.g. a blank image) in the rater's run, "
                                          "not stimuli; needed with `prior: content_free`.")
    correct: bool = Field(True, description="Continuity correction of McNemar's test of the accuracy change (as R mcnemar.test).")
    suffix: str = Field(":prior_corrected", pattern=r"^:[A-Za-z0-9_.-]+$",
                        description="The corrected labels become rater `<rater><suffix>` for the analyses after this one.")

    def produces(self, raters: Sequence[str]) -> list[str]:
        return [f"{r}{self.suffix}" for r in raters]


def probabilities(study: Study, rater: str, analysis_id: str) -> pd.DataFrame:
    """``image_id`` + one column per study emotion with the rater's ``p_emotion_<label>`` (rows with an error dropped)."""
    base = rater.removesuffix(EXPECTED_SUFFIX)
    m = study.machines
    rows = m[m["rater"].astype(str) == base]
    if "error" in rows.columns:
        rows = rows[rows["error"].isna()]
    cols = [f"{PROB_PREFIX['emotion']}{e}" for e in study.emotions]
    missing = [c for c in cols if c not in rows.columns or rows[c].isna().all()]
    if missing:
        raise EmoalignError(f"analysis {analysis_id!r}: rater {base} has no label probabilities "
                            f"({format_examples(missing)}), so its label prior cannot be corrected",
                            hint="run the rater with a backend that records token probabilities (hf, mlx, or a FER "
                                 "model), or leave it out of this analysis' `raters`")
    out = rows[["image_id", *cols]].rename(columns=dict(zip(cols, study.emotions)))
    return out.dropna(subset=study.emotions).reset_index(drop=True)


def _stat_rows(t: np.ndarray, before: np.ndarray, after: np.ndarray, labels: list[str], opts, seed) -> list[dict]:
    k = len(labels)

    def stat(W):
        mb = confusion_metrics(confusion_replicates(t, before, k, W))
        ma = confusion_metrics(confusion_replicates(t, after, k, W))
        out = {}
        for m in ("accuracy", "macro_f1", "cohen_kappa"):
            out[("before", m, None)], out[("after", m, None)], out[("change", m, None)] = mb[m], ma[m], ma[m] - mb[m]
        for j, lab in enumerate(labels):
            b, a = mb["recall"][:, j], ma["recall"][:, j]
            out[("before", "recall", lab)], out[("after", "recall", lab)], out[("change", "recall", lab)] = b, a, a - b
        return out

    n = len(t)
    res = bootstrap_rows(stat, n, opts.bootstrap, seed, opts.ci_level)
    support = np.bincount(t, minlength=k)
    rows = []
    for (stage, metric, emo), (est, se, lo, hi) in res.items():
        rows.append(dict(emotion=emo, stage=stage, metric=metric, estimate=est, std_error=se, conf_low=lo, conf_high=hi,
                         n=int(support[labels.index(emo)]) if emo else n))
    b, c = mcnemar_counts(after == t, before == t)
    mc = mcnemar(b, c, correct=opts.correct)
    for row in rows:
        if row["stage"] == "change" and row["metric"] == "accuracy" and row["emotion"] is None:
            row.update(statistic=mc.statistic, df=mc.df, p_value=mc.p_value, n_improved=b, n_worsened=c)
    return rows


@register("prior_correction", PriorCorrectionOptions, check=check_held_out)
def run(opts: PriorCorrectionOptions, study: Study, r=None) -> KindResult:
    """Divide label probabilities by the rater's (out-of-fold or content-free) prior; accuracy, macro-F1, kappa, recall."""
    raters = require_machine_raters(opts, study)
    if opts.prior == "content_free" and not opts.content_free_images:
        raise EmoalignError(f"analysis {opts.id!r}: prior: content_free needs `content_free_images`",
                            hint="list the image_id(s) of the content-free inputs the rater answered, e.g. [blank]")
    labels = list(study.emotions)
    # a content-free prior fits nothing to the images: no folds (all in fold 0)
    folds = (image_folds(opts, study.stimuli) if opts.prior == "mean"
             else pd.Series(0, index=study.stimuli["image_id"].astype(str).to_numpy()))
    design = study.stimuli[["image_id", *study.design_columns]].copy()
    design["reference"] = study.stimuli[study.reference].astype(str)
    rows, ratings, priors, warnings, new = [], [], [], [], []
    for ri, rater in enumerate(raters):
        probs = probabilities(study, rater, opts.id)
        df = probs.merge(design, on="image_id", how="inner")
        df = apply_subset(df, opts.subset).reset_index(drop=True)
        check_columns(df, opts.by, opts.id)
        bad = sorted(set(df["reference"]) - set(labels))
        if bad:
            raise EmoalignError(f"analysis {opts.id!r}: reference labels outside study.emotions: {format_examples(bad)}",
                                hint="add them to study.emotions or map them")
        P = df[labels].to_numpy(float)
        fold = df["image_id"].map(folds).astype(int).to_numpy()
        if opts.prior == "content_free":
            cf = probs[probs["image_id"].isin(opts.content_free_images)]
            absent = sorted(set(opts.content_free_images) - set(cf["image_id"]))
            if cf.empty or absent:
                raise EmoalignError(f"analysis {opts.id!r}: rater {rater} has no answer for content-free input(s) "
                                    f"{format_examples(absent or opts.content_free_images)}",
                                    hint=f"its run holds image ids such as {format_examples(probs['image_id'].head(3))}; "
                                         "rate the content-free images with the same run, or use `prior: mean`")
            prior = estimate_prior(cf[labels].to_numpy(float))
            Q = divide_prior(P, prior)
            priors.append({"rater": rater, "fold": None, **dict(zip(labels, prior))})
        else:
            Q, by_fold = cross_fit_prior(P, fold)
            priors += [{"rater": rater, "fold": f, **dict(zip(labels, p))} for f, p in by_fold.items()]
        t = pd.Categorical(df["reference"], categories=labels).codes
        before, after = P.argmax(axis=1), Q.argmax(axis=1)
        df["before"], df["after"] = np.asarray(labels, dtype=object)[before], np.asarray(labels, dtype=object)[after]
        df["fold"] = fold
        answer = study.machine_ratings(rater.removesuffix(EXPECTED_SUFFIX), "emotion").set_index("image_id")["value"]
        agree = float((df["image_id"].map(answer) == df["before"]).mean())
        if agree < 0.99:
            warnings.append(f"{opts.id}: rater {rater}: the argmax of its probabilities equals its answer on only "
                            f"{100 * agree:.1f}% of images; `before` is the argmax")
        for gi, (key, g) in enumerate(groups(df, opts.by)):
            ix = g.index.to_numpy()
            for row in _stat_rows(t[ix], before[ix], after[ix], labels, opts, [opts.seed, ri, gi]):
                rows.append({"rater": rater, **key, **row})
        ratings.append(df[["image_id", "fold", "reference", "before", "after"]].assign(rater=rater))
        rows_out = pd.DataFrame({"image_id": df["image_id"], "emotion": df["after"]})
        for j, lab in enumerate(labels):
            rows_out[f"{PROB_PREFIX['emotion']}{lab}"] = Q[:, j]
        how = ("prior from content-free inputs " + ", ".join(opts.content_free_images) if opts.prior == "content_free"
               else f"out-of-fold mean prior, {opts.folds} folds by {fold_text(opts.fold_by)}")
        new.append(DerivedRater(name=f"{rater}{opts.suffix}", rows=rows_out, source=rater,
                                description=f"{rater} labels with the label prior divided out ({how}; analysis {opts.id})"))
    table = finish(rows, ["rater", *opts.by, "emotion", "stage"])
    extra = {"ratings": pd.concat(ratings, ignore_index=True)[["rater", "image_id", "fold", "reference", "before", "after"]],
             "priors": pd.DataFrame(priors)}
    info = {"prior": opts.prior, "content_free_images": opts.content_free_images, "folds": opts.folds,
            "fold_by": opts.fold_by, "bootstrap": opts.bootstrap, "ci_level": opts.ci_level,
            "ci": "percentile bootstrap over images", "test": "McNemar (accuracy change)",
            "derived_raters": [d.name for d in new]}
    return KindResult(table, warnings=warnings, info=info, extra=extra, raters=new)
