"""Report sections as markdown strings: the fixed paper sections and the generic per-kind renderer.

Each function takes a loaded ``Results`` and returns markdown (tables with ``{#tbl-...}`` captions,
figures with ``{#fig-...}``). A section whose analysis is missing or failed returns a note instead,
so a spec without some ids still renders. ``quarto/report.qmd`` prints these from ``output: asis``
cells.
"""

from __future__ import annotations

import re

import pandas as pd

from emoalign.report import figures as F
from emoalign.report import tables as T
from emoalign.report.results import Results

#: analysis ids (specs/paper.yaml) consumed by the fixed sections; all others render generically
FIXED_IDS = ("human_ceiling", "variance_decomposition", "classification", "mcnemar", "dimensional_agreement",
             "valence_bias", "arousal_bias", "valence_emotion_lmm", "arousal_emotion_lmm", "response_diversity",
             "demographic_lmm", "race_emotion_accuracy")

SIG_NOTE = "* p < .05, ** p < .01, *** p < .001"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def note(text: str) -> str:
    return f"\n::: {{.callout-note}}\n{text}\n:::\n\n"


def _need(R: Results, *ids: str) -> str | None:
    """None when all analyses are present, else the skip note of the first missing one."""
    for i in ids:
        if R.status(i) != "ok":
            return note(R.note(i))
    return None


def _warnings(R: Results, aid: str, about: str | None = None) -> str:
    """A note with the analysis' flagged-row legend and its warnings (only those mentioning ``about``, when given)."""
    e = R.entry(aid) or {}
    w = [x for x in e.get("warnings") or [] if about is None or about in str(x)]
    flagged = e.get("flagged") or {}
    if not w and not flagged:
        return ""
    text = ""
    if flagged:
        text += (f"Estimates marked {T.MARK} come from flagged rows (column `flag`): "
                 + ", ".join(f"{k} ({v} rows)" for k, v in flagged.items()) + ". ")
    if w:
        text += f"Warnings from `{aid}`: " + "; ".join(str(x) for x in w[:5]) + (f" (+{len(w) - 5} more)" if len(w) > 5 else "")
    return note(text)


def trials_per_image(study: dict) -> str:
    """One sentence on the human design's balance (the manifest's trials-per-image distribution)."""
    t = study.get("trials_per_image") or {}
    if not t:
        return ""
    if study.get("balanced", t.get("min") == t.get("max")):
        return f"Human design: {T.fnum(t.get('min'), 0)} trials for every image (balanced).\n\n"
    hist = t.get("histogram") or {}
    top = max(hist.items(), key=lambda kv: kv[1]) if hist else None
    return (f"Human design: **unbalanced**, {T.fnum(t.get('min'), 0)}–{T.fnum(t.get('max'), 0)} trials per image "
            f"(median {T.fnum(t.get('median'), 0)}" + (f"; {int(top[1]):,} of {T.fnum(study.get('n_images'))} images "
                                                       f"have {top[0]}" if top else "") + ").\n\n")


# --- study -----------------------------------------------------------------------------------
def study_design(R: Results) -> str:
    md = T.md_table(T.design_summary(R.study), "Study design.", "tbl-design")
    cells = T.design_cells(R.study)
    if cells is not None:
        md += T.md_table(cells, "Stimulus counts per design cell and intended emotion.", "tbl-design-cells")
    return md


def rater_provenance(R: Results) -> str:
    if not R.raters:
        return note("The manifest lists no machine raters.")
    prov = T.provenance(R.raters)
    sim = [r["rater"] for r in R.raters if r.get("simulated")]
    real = [r["rater"] for r in R.raters if not r.get("simulated")]
    md = ""
    if sim:
        md += note(f"**Simulated raters.** {', '.join(f'`{r}`' for r in sim)} are SIMULATED profiles drawn from a "
                   "generative model of the paper's reported behaviour, not outputs of those models. "
                   + (f"Real model runs: {', '.join(f'`{r}`' for r in real)}." if real else "No rater here is a real model run."))
    return md + T.md_table(prov, "Machine raters and their provenance (SIMULATED = a simulated profile, "
                                 "not model output; template = prompt-template hash).", "tbl-raters")


# --- human ceiling ---------------------------------------------------------------------------
def human_ceiling(R: Results) -> str:
    miss = _need(R, "human_ceiling")
    if miss:
        return miss
    df = R.table("human_ceiling")
    how = "95% bootstrap CI over images"
    if "ci_method" in df.columns and df["ci_method"].notna().any():
        how = "95% CI: " + "; ".join(str(x) for x in pd.unique(df["ci_method"].dropna()))
    return T.md_table(T.ceiling(df), f"Human inter-rater reliability (the ceiling machine raters are judged against), "
                                     f"{how}.", "tbl-human-ceiling") + trials_per_image(R.study) + _warnings(R, "human_ceiling")


def variance_decomposition(R: Results) -> str:
    miss = _need(R, "variance_decomposition")
    if miss:
        return miss
    df = R.table("variance_decomposition")
    md = T.md_table(T.variance(df), "Variance decomposition of human ratings: rating ~ 1 + (1 | rater) + (1 | image).",
                    "tbl-variance")
    p, size = F.variance_shares(df)
    if p is not None:
        md += F.figure_md(p, "Share of human rating variance due to raters, images and residual.", "fig-variance",
                          width=size[0], height=size[1], pct=55)
    return md + _warnings(R, "variance_decomposition")


# --- classification --------------------------------------------------------------------------
def classification(R: Results) -> str:
    miss = _need(R, "classification")
    if miss:
        return miss
    df = R.table("classification")
    md = T.md_table(T.classification_ranking(df, R.rater_family()),
                    "Overall emotion classification against the intended labels, ranked by Cohen's κ (paper Table 1).",
                    "tbl-classification")
    md += T.md_table(T.per_emotion_accuracy(df), "Emotion-specific classification accuracy, proportion correct (paper Table 2).",
                     "tbl-emotion-accuracy")
    p, size = F.confusion_heatmaps(df)
    md += F.figure_md(p, "Confusion matrices per rater (row proportions: share of each intended emotion given each label).",
                      "fig-confusion", width=size[0], height=size[1])
    return md + _warnings(R, "classification")


def mcnemar(R: Results) -> str:
    miss = _need(R, "mcnemar")
    if miss:
        return miss
    df = R.table("mcnemar")
    return T.md_table(T.mcnemar(df), f"McNemar tests between raters' correctness (Δ = accuracy of rater − vs). {SIG_NOTE} (adjusted).",
                      "tbl-mcnemar") + _warnings(R, "mcnemar")


# --- dimensions ------------------------------------------------------------------------------
def dimension_summary(R: Results, dimension: str, table_no: int) -> str:
    miss = _need(R, "dimensional_agreement")
    if miss:
        return miss
    df = R.table("dimensional_agreement")
    if not (df["dimension"] == dimension).any():
        return note(f"`dimensional_agreement` has no {dimension} rows.")
    return T.md_table(T.dimension_summary(df, dimension, R.rater_family()),
                      f"{dimension.capitalize()} agreement with the human mean per image: Pearson r "
                      "(95% CI), MAE, RMSE, Bland–Altman bias (machine − human) with 95% limits of agreement, "
                      f"model and human M (SD) (paper Table {table_no}).", f"tbl-{dimension}") + _warnings(R, "dimensional_agreement", dimension)


def bias(R: Results, dimension: str, table_no: int) -> str:
    bid, lid = f"{dimension}_bias", f"{dimension}_emotion_lmm"
    miss = _need(R, bid)
    if miss:
        return miss
    lmm = R.table(lid)
    tbl = T.bias_table(R.table(bid), lmm)
    cap = (f"Per-emotion {dimension} bias, machine − human mean (paper Table {table_no}). Marks: Wilcoxon signed-rank test, "
           f"adjusted p ({SIG_NOTE}).")
    if lmm is not None and "effect" in lmm.columns and (lmm["effect"] == "contrast").any():
        cap += (" LMM β (p): machine − human at each emotion from rating ~ rater_type × emotion + (1 | image) "
                "(emmeans simple effects; lmerTest, Satterthwaite df).")
    elif lmm is not None:
        cap += (" LMM β (p): rating ~ rater_type × emotion + (1 | image) (lmerTest, Satterthwaite df); at the reference "
                "emotion the rater_type effect, otherwise the rater_type × emotion interaction (bias relative to the reference emotion).")
    md = T.md_table(tbl, cap, f"tbl-{dimension}-bias") + _warnings(R, bid) + (_warnings(R, lid) if lmm is not None else "")
    if lmm is None:
        md += note(R.note(lid))
    return md


def bland_altman(R: Results) -> str:
    miss = _need(R, "dimensional_agreement")
    if miss:
        return miss
    pts = R.extra("dimensional_agreement", "points")
    if pts is None or pts.empty:
        return note("`dimensional_agreement` wrote no `points` table, so the Bland–Altman plots are skipped.")
    p, size = F.bland_altman(pts, R.table("dimensional_agreement"))
    return F.figure_md(p, "Bland–Altman plots per rater and dimension: machine − human difference against the mean of "
                          "the two, with the bias and 95% limits of agreement.", "fig-bland-altman",
                       width=size[0], height=size[1], dpi=90)


def strength_inversion(R: Results) -> str:
    miss = _need(R, "dimensional_agreement")
    if miss:
        return miss
    p, size = F.strength_inversion(R.table("dimensional_agreement"), R.rater_family())
    return F.figure_md(p, "Strength inversion: valence r (x) against arousal r (y) with the human mean per rater, "
                          "95% CIs (paper Figure 3).", "fig-strength-inversion", width=size[0], height=size[1])


def response_variance(R: Results) -> str:
    miss = _need(R, "response_diversity")
    if miss:
        return miss
    df = R.table("response_diversity")
    dims = F.dim_order(df["dimension"]) if "dimension" in df.columns else [None]
    md = ""
    for dim in dims:  # one table per dimension keeps the PDF readable
        d = df[df["dimension"] == dim] if dim else df
        name = dim or "rating"
        md += T.md_table(T.response_variance(d),
                         f"Response variance by emotion, {name} (paper Table 7): SD of {name} ratings within each emotion "
                         "category (machine raters: number of unique values in parentheses; human SD over raw trials).",
                         f"tbl-response-variance-{slug(name)}")
    return md


# --- demographics ----------------------------------------------------------------------------
def demographic(R: Results) -> str:
    miss = _need(R, "demographic_lmm")
    if miss:
        return miss
    df = R.table("demographic_lmm")
    p, size = F.demographic_forest(df)
    md = ""
    if p is not None:
        md += F.figure_md(p, "Demographic bias profile per rater (paper Figure 4): machine × demographic interaction terms of "
                             "rating ~ rater_type × (race + gender) + (1 | image), 95% CIs (circles: p < .05).",
                          "fig-demographic-bias", width=size[0], height=size[1])
    fx = df[(df["effect"] == "fixed") if "effect" in df.columns else slice(None)]
    fx = fx[fx["term"].astype(str).str.startswith("rater_type")]
    rows = [{"Rater": r["rater"], "Dimension": r.get("dimension", "–"), "Term": F.clean_term(r["term"]),
             "β [95% CI]": T.fci(r["estimate"], r.get("conf_low"), r.get("conf_high")) + T.mark(r), "t": T.fnum(r.get("statistic"), 2),
             "df": T.fnum(r.get("df"), 1), "p": T.fp(r.get("p_value")) + T.stars(r.get("p_value"))} for _, r in fx.iterrows()]
    md += T.md_table(pd.DataFrame(rows), "Demographic LMM: machine effect and its interactions with the demographic "
                                        "columns (reference levels as in the spec).", "tbl-demographic-lmm")
    return md + _warnings(R, "demographic_lmm")


def race_emotion_accuracy(R: Results) -> str:
    miss = _need(R, "race_emotion_accuracy")
    if miss:
        return miss
    return T.md_table(T.group_accuracy(R.table("race_emotion_accuracy")),
                      "Intersectional classification accuracy (Wilson 95% CI).", "tbl-race-emotion-accuracy")


# --- generic ---------------------------------------------------------------------------------
KIND_BLURB = {
    "reliability": "Inter-rater reliability (Krippendorff's α / ICC).",
    "variance_components": "Variance components of a random-effects model.",
    "classification": "Categorical agreement with the intended labels.",
    "mcnemar": "McNemar tests between raters' correctness.",
    "agreement": "Dimensional agreement with the human mean.",
    "group_bias": "Machine − human bias per group, Wilcoxon signed-rank tests.",
    "lmm": "Linear mixed model (lmerTest, Satterthwaite df).",
    "response_diversity": "Response diversity (unique values, SD, SD ratio to humans).",
    "group_accuracy": "Classification accuracy per group (Wilson CI).",
}


def generic(R: Results, aid: str, level: int = 2) -> str:
    """Any analysis by its kind: heading, a tidy table and a default estimate plot."""
    e = R.entry(aid) or {}
    kind = e.get("kind", "?")
    md = f"\n{'#' * level} {R.title(aid)} {{#sec-{slug(aid)}}}\n\n"
    md += f"Analysis `{aid}`, kind `{kind}`. {KIND_BLURB.get(kind, '')}\n\n"
    if R.status(aid) != "ok":
        return md + note(R.note(aid))
    df = R.table(aid)
    if kind == "lmm" and "effect" in df.columns:
        df = df[df["effect"] != "ran_pars"] if (df["effect"] == "fixed").any() else df
    shown, left = T.generic(df)
    more = f" First {len(shown)} of {len(shown) + left} rows; the full table is `{e.get('file') or aid + '.parquet'}`." if left else ""
    md += T.md_table(shown, f"{R.title(aid)} (`{aid}`, kind {kind}).{more}", f"tbl-{slug(aid)}")
    p, size = F.generic_plot(df)
    if p is not None:
        md += F.figure_md(p, f"{R.title(aid)}: estimates" + (" with 95% CIs." if "conf_low" in df.columns else "."),
                          f"fig-{slug(aid)}", width=size[0], height=size[1], dpi=90)
    return md + _warnings(R, aid)


def other_analyses(R: Results) -> str:
    ids = [a["id"] for a in R.analyses if a.get("id") not in FIXED_IDS]
    if not ids:
        return "\nEvery analysis in these results appears in the sections above.\n"
    return "".join(generic(R, aid) for aid in ids)


# --- provenance ------------------------------------------------------------------------------
def provenance_footer(R: Results) -> str:
    m = R.manifest
    spec = m.get("spec") or {}
    v = m.get("versions") or {}
    rows = [("Spec", f"`{spec.get('path', '–')}`"), ("Spec sha256", f"`{str(spec.get('sha256', '–'))[:16]}`"),
            ("emoalign", str(v.get("emoalign", "–"))), ("Python", str(v.get("python", "–"))), ("R", str(v.get("R", "–"))),
            ("Started", str(m.get("started", "–"))), ("Finished", str(m.get("finished", "–"))),
            ("Seconds", T.fnum(m.get("seconds"), 1)), ("Results folder", f"`{R.root}`")]
    for name, sha in (m.get("inputs") or {}).items():
        rows.append((f"Input `{name}`", f"`{str(sha)[:16]}`"))
    md = T.md_table(pd.DataFrame(rows, columns=["Item", "Value"]), "Provenance of these results.", "tbl-provenance")
    an = [{"Analysis": f"`{a.get('id')}`", "Kind": a.get("kind", "–"), "Status": a.get("status", "–"),
           "Rows": T.fnum(a.get("rows")), "Seconds": T.fnum(a.get("seconds"), 2),
           "Warnings": str(len(a.get("warnings") or [])), "Flagged rows": T.fnum(a.get("rows_flagged") or 0)}
          for a in R.analyses]
    if an:
        md += T.md_table(pd.DataFrame(an), "Analyses in the manifest.", "tbl-analyses")
    return md
