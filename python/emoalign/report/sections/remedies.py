"""The sections of the remedy kinds (``calibration``, ``prior_correction``, ``human_percentile``) and of the
derived raters they write, shown in the report's "Beyond the paper: remedies", whatever their analysis ids.

Each table shows held-out estimates before and after the remedy with their bootstrap CIs, as the
kinds wrote them; nothing is re-estimated here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from plotnine import aes, facet_wrap, geom_abline, geom_point, ggplot, labs, scale_color_manual

from emoalign.analysis.kinds._shared import fold_text
from emoalign.report import figures as F
from emoalign.report import tables as T
from emoalign.report.names import Names
from emoalign.report.results import Results
from emoalign.report.sections.base import section, slug

METRIC_NAMES = {"mae": "MAE", "rmse": "RMSE", "pearson_r": "r", "mean_diff": "bias (machine − human)",
                "sd_ratio": "SD ratio", "accuracy": "accuracy", "macro_f1": "macro-F1", "cohen_kappa": "Cohen's κ",
                "recall": "recall"}


def _ci(row, digits: int = 3) -> str:
    return T.fci(row.get("estimate"), row.get("conf_low"), row.get("conf_high"), digits)


def _level(opts: dict) -> str:
    return f"{100 * float(opts.get('ci_level', 0.95)):.0f}%"


def before_after(df: pd.DataFrame, keys: list[str], names: Names, label=None) -> pd.DataFrame:
    """One row per ``keys`` group: Before, After, Change, each ``estimate [CI]`` (``stage`` rows of a remedy table)."""
    rows = []
    for key, g in df.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        by = g.set_index("stage")
        row = {}
        for k, v in zip(keys, key):
            row[{"rater": "Rater", "dimension": "Dimension", "metric": "Measure", "emotion": "Emotion"}.get(k, k)] = (
                names.rater(v) if k == "rater" else METRIC_NAMES.get(v, v) if k == "metric" else
                ("overall" if v is None or (isinstance(v, float) and np.isnan(v)) else v))
        for stage in ("before", "after", "change"):
            row[stage.capitalize()] = _ci(by.loc[stage]) if stage in by.index else "–"
        if label:
            row.update(label(by))
        rows.append(row)
    return pd.DataFrame(rows)


def derived_raters(R: Results, names: Names) -> str:
    d = [r for r in R.raters if r.get("derived")]
    if not d:
        return ""
    t = pd.DataFrame([{"Rater": names.rater(r["rater"]), "Made from": ", ".join(names.rater(s) for s in r.get("sources") or []),
                       "How": r["derived"], "Written by": f"`{r['produced_by']}`" if r.get("produced_by") else "study.derived"}
                      for r in d])
    return T.md_table(t, "Derived raters: raters assembled per field from others (`study.derived`, e.g. the paper's §5.4 "
                         "hybrid of FER labels and valence with VLM arousal) or written by a remedy analysis for the analyses "
                         "after it. They are ordinary raters everywhere in this report." + names.sim_note(
                             [r["rater"] for r in d], humans=False), "tbl-derived-raters")


# --- calibration ----------------------------------------------------------------------------------
@section("calibration", heading="Calibration", place="remedies", columns=("stage", "metric"))
def calibration(R: Results, aid: str, names: Names) -> str:
    df, opts = R.table(aid), R.options(aid)
    per = {"predicted": "the emotion the machine gave", "reference": "the intended emotion", "none": "all images"}[opts.get("per", "predicted")]
    how = (f"{opts.get('method', 'affine')} map per {per}, fitted on {opts.get('folds', 5)} folds grouped by "
           f"{fold_text(opts.get('fold_by'))} and applied to the held-out fold; {_level(opts)} percentile bootstrap CIs over "
           "images (the change is paired)")
    ov = df[df["emotion"].isna()] if "emotion" in df.columns else df
    sim = names.sim_note(list(pd.unique(df["rater"])))
    md = T.md_table(before_after(ov, ["rater", "dimension", "metric"], names),
                    f"{R.title(aid)}: held-out agreement with the human image mean before and after calibration ({how})."
                    + sim, f"tbl-{slug(aid)}")
    if "emotion" in df.columns and df["emotion"].notna().any():
        mae = df[(df["metric"] == "mae") & df["emotion"].notna()]
        rows = []
        for (r, dim), g in mae.groupby(["rater", "dimension"], sort=False):
            row = {"Rater": names.rater(r), "Dimension": dim}
            for e in T.emotion_sort(g["emotion"]):
                s = g[g["emotion"] == e].set_index("stage")["estimate"]
                row[e] = f"{T.fnum(s.get('before'), 2)} → {T.fnum(s.get('after'), 2)}"
            rows.append(row)
        md += T.md_table(pd.DataFrame(rows), f"{R.title(aid)}: held-out MAE per intended emotion, before → after." + sim,
                         f"tbl-{slug(aid)}-emotion")
    return md + _reading_calibration(ov, names, opts)


def _reading_calibration(ov: pd.DataFrame, names: Names, opts: dict) -> str:
    out = []
    for (r, dim), g in ov[ov["metric"] == "mae"].groupby(["rater", "dimension"], sort=False):
        s = g.set_index("stage")
        ch = s.loc["change"]
        out.append(f"{names.rater(r)} {dim} MAE {T.fnum(s.loc['before', 'estimate'], 2)} → {T.fnum(s.loc['after', 'estimate'], 2)} "
                   f"(change {T.fci(ch['estimate'], ch.get('conf_low'), ch.get('conf_high'), 2)})")
    if not out:
        return ""
    return (f"\n*Reading.* On held-out images the {opts.get('method', 'affine')} calibration changes the error as follows: "
            + "; ".join(out) + ". A calibrated rater is a new rater fitted to these humans: its error on new faces is the "
            "held-out value, not the in-sample one.\n\n")


# --- prior correction ------------------------------------------------------------------------------
@section("prior_correction", heading="Label-prior correction", place="remedies", columns=("stage", "metric"))
def prior_correction(R: Results, aid: str, names: Names) -> str:
    df, opts = R.table(aid), R.options(aid)
    src = (f"its answers to the content-free inputs {', '.join(opts.get('content_free_images') or [])}"
           if opts.get("prior") == "content_free" else
           f"its mean probabilities over the training folds' images ({opts.get('folds', 5)} folds by {fold_text(opts.get('fold_by'))})")
    sim = names.sim_note(list(pd.unique(df["rater"])), humans=False)
    base = df[df["emotion"].isna()] if "emotion" in df.columns else df

    def mcnemar(by):
        if "change" in by.index and "p_value" in by.columns and pd.notna(by.loc["change"].get("p_value")):
            c = by.loc["change"]
            return {"McNemar p": f"{T.fp(c['p_value'])} ({int(c['n_improved'])} right only after, "
                                 f"{int(c['n_worsened'])} only before)"}
        return {"McNemar p": "–"}

    md = T.md_table(before_after(base, ["rater", "metric"], names, mcnemar),
                    f"{R.title(aid)}: each rater's label probabilities divided by its label prior, estimated from {src}, "
                    f"and the argmax re-taken (Zhao et al. 2021); labels before and after against the intended emotion, "
                    f"{_level(opts)} percentile bootstrap CIs over images (the change is paired)." + sim, f"tbl-{slug(aid)}")
    rec = df[(df["metric"] == "recall") & df["emotion"].notna()] if "emotion" in df.columns else df.iloc[0:0]
    if len(rec):
        md += T.md_table(before_after(rec, ["rater", "emotion"], names),
                         f"{R.title(aid)}: recall per intended emotion (the share of its faces labelled correctly) before and "
                         "after." + sim, f"tbl-{slug(aid)}-recall")
        sad = rec[(rec["emotion"] == "sad") & (rec["stage"] != "change")]
        if len(sad):
            parts = [f"{names.rater(r)} {T.fnum(g.set_index('stage').loc['before', 'estimate'], 2)} → "
                     f"{T.fnum(g.set_index('stage').loc['after', 'estimate'], 2)}" for r, g in sad.groupby("rater", sort=False)]
            md += (f"\n*Reading.* Sad recall, the paper's sad → neutral absorption (§4.1, §5.3): {'; '.join(parts)}. "
                   "What the correction recovers is the part of the absorption that is a prior over labels; evidence the "
                   "model never extracted from the face stays lost.\n\n")
    return md


# --- the models among the humans ------------------------------------------------------------------
@section("human_percentile", heading="The models among the human raters", place="remedies")
def human_percentile(R: Results, aid: str, names: Names) -> str:
    df, opts = R.table(aid), R.options(aid)
    rows = []
    for (r, dim), g in df.groupby(["rater", "dimension"], sort=False):
        s = g.set_index("metric")
        get = lambda m: s.loc[m] if m in s.index else {}  # noqa: E731
        rows.append({"Rater": names.rater(r), "Dimension": dim,
                     "Percentile (r)": _ci(get("percentile_r"), 1), "Percentile (MAE)": _ci(get("percentile_mae"), 1),
                     "r: model / humans": f"{T.fnum(get('machine_r').get('estimate'), 3)} / {T.fnum(get('human_r').get('estimate'), 3)}",
                     "MAE: model / humans": f"{T.fnum(get('machine_mae').get('estimate'), 2)} / {T.fnum(get('human_mae').get('estimate'), 2)}",
                     "α humans → with model": f"{T.fnum(get('alpha_humans').get('estimate'), 3)} → "
                                              f"{T.fnum(get('alpha_with_machine').get('estimate'), 3)}",
                     "Δα": _ci(get("alpha_change"), 4),
                     "Raters": T.fnum(get("percentile_r").get("n"))})
    raters = list(pd.unique(df["rater"]))
    sim = names.sim_note(raters)
    md = T.md_table(pd.DataFrame(rows), f"{R.title(aid)}: each model placed among the individual human raters. For every "
                    "human rater, their r and MAE with the mean of the other raters on the images they rated, beside the "
                    "model's with the same means on the same images; percentile = share of human raters the model agrees "
                    f"with the others better than (ties half), {_level(opts)} CI from a bootstrap over raters and images. "
                    f"r and MAE: means over raters. α: Krippendorff's {opts.get('level', 'ordinal')} alpha of the humans, "
                    "then with the model as one more coder." + sim, f"tbl-{slug(aid)}")
    pts = R.extra(aid, "raters")
    if pts is not None and len(pts):
        p, size = percentile_scatter(pts, names)
        md += F.figure_md(p, f"{R.title(aid)}: one point per human rater, their r with the other raters' mean (x) against "
                             "the model's r with the same means on the same images (y); above the diagonal the model agrees "
                             "better than that rater." + sim, f"fig-{slug(aid)}", width=size[0], height=size[1])
    top = df[df["metric"] == "percentile_r"].sort_values("estimate", ascending=False)
    if len(top):
        parts = [f"{names.rater(r.rater)} {r.dimension} {T.fnum(r.estimate, 0)}" for r in top.head(4).itertuples()]
        md += (f"\n*Reading.* Percentile by r: {'; '.join(parts)}. A model at the 100th percentile tracks the consensus "
               "better than every single human does, which the human ceiling (agreement of humans with each other) "
               "does not show; a low percentile by MAE with a high one by r is a model that ranks faces like the "
               "consensus but on a shifted or stretched scale, which calibration addresses.\n\n")
    return md


def percentile_scatter(pts: pd.DataFrame, names: Names):
    d = pts.dropna(subset=["r_human", "r_machine"]).copy()
    d = d.sort_values("dimension", key=lambda s: s.map({"valence": 0, "arousal": 1}).fillna(2), kind="stable")
    d["panel"] = [f"{names.rater(r)}\n{dim}" for r, dim in zip(d["rater"], d["dimension"])]
    d["panel"] = pd.Categorical(d["panel"], categories=list(pd.unique(d["panel"])))
    d["better"] = np.where(d["r_machine"] > d["r_human"], "model better", "human better")
    n = d["panel"].nunique()
    ncol = min(3, n)
    p = (ggplot(d, aes("r_human", "r_machine", color="better")) + geom_point(size=0.6, alpha=0.5)
         + geom_abline(intercept=0, slope=1, linetype="dashed") + facet_wrap("panel", ncol=ncol)
         + scale_color_manual(values={"model better": "#1b9e77", "human better": "#d95f02"})
         + labs(x="human rater's r with the others' mean", y="model's r (same images, same means)", color="") + F.BASE)
    rows = int(np.ceil(n / ncol))
    return p, (F.TEXT_WIDTH, 2.2 * rows + 1.2)
