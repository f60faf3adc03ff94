"""Report sections as markdown strings: the fixed paper sections and the generic per-kind renderer.

Each function takes a loaded ``Results`` and returns markdown (tables with ``{#tbl-...}`` captions,
figures with ``{#fig-...}``). A section whose analysis is missing or failed returns a note instead,
so a spec without some ids still renders. ``quarto/report.qmd`` prints these from ``output: asis``
cells. Captions are built from what ran (the options and kind info in the manifest), every table and
figure that shows simulated data says so, and each section ends with a reading computed from its numbers.
"""

from __future__ import annotations

import os
import re

import pandas as pd

from emoalign.report import captions as C
from emoalign.report import figures as F
from emoalign.report import interpret as I
from emoalign.report import tables as T
from emoalign.report.names import MARK, Names
from emoalign.report.remedies import KINDS as REMEDY_KINDS
from emoalign.report.remedies import section as remedies  # noqa: F401  (the qmd prints S.remedies(R))
from emoalign.report.results import Results

#: analysis ids (specs/paper.yaml) consumed by the fixed sections; all others render generically
FIXED_IDS = ("human_ceiling", "variance_decomposition", "naturalness", "classification", "mcnemar",
             "dimensional_agreement", "valence_bias", "arousal_bias", "valence_emotion_lmm", "arousal_emotion_lmm",
             "response_diversity", "demographic_lmm", "race_emotion_accuracy")

SIG_NOTE = "* p < .05, ** p < .01, *** p < .001"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def note(text: str, kind: str = "note") -> str:
    return f"\n::: {{.callout-{kind}}}\n{text}\n:::\n\n"


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
        text += (f"Estimates marked {T.FLAG_MARK} come from flagged rows (column `flag`): "
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
def _names(R: Results) -> Names:
    return Names.of(R)


def _raters_in(df: pd.DataFrame, col: str = "rater") -> list[str]:
    return [str(r) for r in pd.unique(df[col])] if col in df.columns else []


def _remap_note(R: Results, raters) -> str:
    """Caption sentence for raters whose native classes were mapped onto the study's labels."""
    out = []
    for r in raters:
        e = R.rater_entry(r)
        if e.get("label_map"):
            out.append(f"{Names.of(R).rater(r)}: {T.label_map_text(e)}")
    return (" Label mapping: " + "; ".join(out) + ".") if out else ""


# --- title page ------------------------------------------------------------------------------
def title_banner(R: Results) -> str:
    """What in this report is real and what is simulated (read from the manifest)."""
    n = Names.of(R)
    st = R.study
    sim_raters = [r["rater"] for r in R.raters if r.get("simulated")]
    real_raters = [r["rater"] for r in R.raters if not r.get("simulated")]
    s = R.simulation
    if not s and not sim_raters:
        return note(f"**All data in this report are observed:** {T.fnum(st.get('n_images'))} images, "
                    f"{T.fnum(st.get('n_human_raters'))} human raters ({T.fnum(st.get('n_trials'))} trials) and "
                    f"{len(real_raters)} real model runs ({', '.join(n.rater(r) for r in real_raters) or 'none'}).")
    sim_parts, real_parts = [], []
    (sim_parts if R.stimuli_simulated else real_parts).append(f"the {T.fnum(st.get('n_images'))} stimulus images")
    (sim_parts if R.humans_simulated else real_parts).append(
        f"the {T.fnum(st.get('n_human_raters'))} human raters and their {T.fnum(st.get('n_trials'))} ratings")
    if sim_raters:
        sim_parts.append(f"the machine raters {', '.join(n.rater(r) for r in sim_raters)}")
    if real_raters:
        real_parts.append("the outputs of " + ", ".join(n.rater(r) for r in real_raters)
                          + (" (real model runs" + (" on the simulated images)" if R.stimuli_simulated else ")")))
    prof = f" (profile `{s['profile']}`, seed {s.get('seed')})" if s.get("profile") else ""
    text = (f"**{'Simulated study' if s else 'Simulated raters'}.** SIMULATED{prof}: {I._list(sim_parts)}. They are drawn "
            "from a generative model of published values, not observed, and carry the mark " + MARK + " in every table "
            "and figure. " + (f"**Real:** {I._list(real_parts)}. " if real_parts else "**Nothing here is real data.** ")
            + "Results about simulated data describe the simulator, not human perception or the named models.")
    return note(text, "warning")


# --- study -----------------------------------------------------------------------------------
def study_design(R: Results) -> str:
    n = _names(R)
    md = T.md_table(T.design_summary(R.study, R.simulation), "Study design." + n.sim_note([], humans=True)
                    + (" The stimulus images are simulated schematic faces." if R.stimuli_simulated else ""), "tbl-design")
    cells = T.design_cells(R.study)
    if cells is not None:
        md += T.md_table(cells, "Stimulus counts per design cell and intended emotion."
                         + (" Simulated stimuli." if R.stimuli_simulated else ""), "tbl-design-cells")
    return md


def rater_provenance(R: Results) -> str:
    if not R.raters:
        return note("The manifest lists no machine raters.")
    n = _names(R)
    prov = T.provenance(R.raters, n)
    sim = [r["rater"] for r in R.raters if r.get("simulated") and not r.get("derived")]
    real = [r["rater"] for r in R.raters if not r.get("simulated") and not r.get("derived")]
    md = ""
    if sim:
        md += note(f"**Simulated raters.** {', '.join(n.rater(r) for r in sim)} are SIMULATED profiles drawn from a "
                   "generative model of published results, not outputs of those models. "
                   + (f"Real model runs: {', '.join(f'`{r}`' for r in real)}." if real else "No rater here is a real model run."))
    cap = ("Machine raters and their provenance (SIMULATED = a simulated profile, not model output; template = "
           "prompt-template hash" + ("; labels = how a model's native classes map onto the study's emotions" if "Labels" in prov.columns else "")
           + ")." + n.sim_note(sim, humans=False))
    return md + T.md_table(prov, cap, "tbl-raters")


# --- human ceiling ---------------------------------------------------------------------------
def human_ceiling(R: Results) -> str:
    miss = _need(R, "human_ceiling")
    if miss:
        return miss
    n = _names(R)
    df = R.table("human_ceiling")
    cap = ("Human inter-rater reliability, the ceiling machine raters are judged against: "
           + C.reliability(R.options("human_ceiling"), df) + "." + n.sim_note(["human"]))
    return (T.md_table(T.ceiling(df, n), cap, "tbl-human-ceiling") + trials_per_image(R.study)
            + _warnings(R, "human_ceiling"))


def variance_decomposition(R: Results) -> str:
    miss = _need(R, "variance_decomposition")
    if miss:
        return miss
    df = R.table("variance_decomposition")
    opts, info = R.options("variance_decomposition"), R.info("variance_decomposition")
    n = _names(R)
    fixed = opts.get("fixed") or []
    formula = info.get("formula") or opts.get("formula") or "rating ~ 1 + (1|rater_id) + (1|image_id)"
    cap = (f"Variance decomposition of the raw human ratings: {C.formula(formula)} fitted by "
           f"{'REML' if opts.get('reml', True) else 'maximum likelihood'} (lme4)"
           + (f", with {', '.join(fixed)} as fixed effect{'s' if len(fixed) > 1 else ''} (the image variance is the variance "
              f"of images within {' × '.join(fixed)})" if fixed else "")
           + (f"; {C.ci(opts.get('ci_level'), 'likelihood profile')}" if opts.get("ci") == "profile" else "")
           + ". Share = component / sum of the random-effect and residual variances." + n.sim_note(["human"]))
    md = T.md_table(T.variance(df), cap, "tbl-variance")
    p, size = F.variance_shares(df)
    if p is not None:
        md += F.figure_md(p, "Share of human rating variance due to raters, images and residual." + n.sim_note(["human"]),
                          "fig-variance", width=size[0], height=size[1])
    return md + I.human_ceiling(R) + _warnings(R, "variance_decomposition")


def naturalness(R: Results) -> str:
    if R.status("naturalness") != "ok":
        return ""
    n = _names(R)
    t = T.naturalness(R.table("naturalness"))
    return (T.md_table(t, "Naturalness of the stimuli: human ratings per intended emotion, mean and SD of the raw "
                          "ratings (paper §2.4)." + n.sim_note(["human"]), "tbl-naturalness") + I.naturalness(R))


# --- classification --------------------------------------------------------------------------
def classification(R: Results) -> str:
    miss = _need(R, "classification")
    if miss:
        return miss
    df = R.table("classification")
    n = _names(R)
    raters = _raters_in(df)
    opts = R.options("classification")
    ci = f"{100 * float(opts.get('ci_level', 0.95)):.0f}%"
    sim, remap = n.sim_note(raters, humans=False), _remap_note(R, raters)
    ref = R.info("classification").get("reference") or "emotion"
    md = T.md_table(T.classification_ranking(df, R.rater_family(), n),
                    f"Overall emotion classification against the intended labels (`{ref}`), ranked by Cohen's κ "
                    f"(paper Table 1). Accuracy: Wilson {ci} CI; κ: asymptotic {ci} CI (Fleiss, Cohen & Everitt); macro "
                    "F1: unweighted mean of the per-emotion F1 over the emotions that occur." + remap + sim,
                    "tbl-classification")
    md += T.md_table(T.per_emotion_accuracy(df, "accuracy", n), "Emotion-specific classification accuracy: proportion "
                     "of each emotion's images labelled correctly (recall; paper Table 2)." + sim, "tbl-emotion-accuracy")
    if (df["metric"] == "f1").any():
        md += T.md_table(T.per_emotion_accuracy(df, "f1", n), "Per-emotion F1 (harmonic mean of precision and recall; "
                         "the paper's §4.1 and §5.3 \"sadness paradox\": sad F1)." + sim, "tbl-emotion-f1")
    if (df["metric"] == "confusion_prop").any():
        p, size = F.confusion_heatmaps(df, n)
        md += F.figure_md(p, "Confusion matrices per rater (row proportions: the share of each intended emotion's images "
                             "given each label)." + remap + sim, "fig-confusion", width=size[0], height=size[1])
    return md + I.classification(R, n, R.rater_family()) + _warnings(R, "classification")


def mcnemar(R: Results) -> str:
    miss = _need(R, "mcnemar")
    if miss:
        return miss
    df = R.table("mcnemar")
    n = _names(R)
    opts = R.options("mcnemar")
    adj = C.adjustment(opts.get("adjust", "holm"), n_tests=len(df))
    base = (f"{C.mcnemar(opts)}. n10 = images rater A labels correctly and rater B does not; n01 = the reverse; "
            f"Δ accuracy = (n10 − n01) / n; {adj} ({SIG_NOTE}).")

    def raters_of(rows):
        return list(dict.fromkeys([*_raters_in(df.loc[rows]), *_raters_in(df.loc[rows], "rater2")]))

    kinds = {"real": [], "sim": [], "mixed": []}
    for i, r in df.iterrows():
        a, b = n.is_simulated(r["rater"]), n.is_simulated(r["rater2"])
        kinds["sim" if a and b else "real" if not a and not b else "mixed"].append(i)
    md = ""
    if kinds["real"]:
        md += T.md_table(T.mcnemar(df.loc[kinds["real"]], n), "McNemar tests between real model runs: " + base
                         + _remap_note(R, raters_of(kinds["real"])), "tbl-mcnemar")
    if kinds["sim"]:
        md += T.md_table(T.mcnemar(df.loc[kinds["sim"]], n), "McNemar tests between simulated rater profiles: " + base
                         + n.sim_note(raters_of(kinds["sim"]), humans=False),
                         "tbl-mcnemar-simulated" if kinds["real"] else "tbl-mcnemar")
    if kinds["mixed"]:
        md += T.md_table(T.mcnemar(df.loc[kinds["mixed"]], n),
                         "McNemar tests of a real model run against simulated profiles. These are not comparisons of two "
                         "models: the simulated rater's correctness is drawn from published accuracies. " + base
                         + _remap_note(R, raters_of(kinds["mixed"])) + n.sim_note(raters_of(kinds["mixed"]), humans=False),
                         "tbl-mcnemar-mixed")
    return md + _warnings(R, "mcnemar")


# --- dimensions ------------------------------------------------------------------------------
def dimension_summary(R: Results, dimension: str, table_no: int) -> str:
    miss = _need(R, "dimensional_agreement")
    if miss:
        return miss
    df = R.table("dimensional_agreement")
    if not (df["dimension"] == dimension).any():
        return note(f"`dimensional_agreement` has no {dimension} rows.")
    n = _names(R)
    opts = R.options("dimensional_agreement")
    ci = f"{100 * float(opts.get('ci_level', 0.95)):.0f}%"
    raters = _raters_in(df[df["dimension"] == dimension])
    cap = (f"{dimension.capitalize()} agreement with the human mean per image (paper Table {table_no}): Pearson r "
           f"({ci} CI, Fisher z), ICC(A,1) (two-way random, absolute agreement, single rater; {ci} CI, McGraw & Wong), "
           f"MAE, RMSE, Bland–Altman bias (machine − human) with {ci} limits of agreement "
           f"(bias ± {float(opts.get('loa_z', 1.96)):g} SD), SD ratio (machine SD / human SD; > 1: polarity exaggeration), "
           "and model and human M (SD) over images; ranked by r." + n.sim_note(raters))
    return (T.md_table(T.dimension_summary(df, dimension, R.rater_family(), n), cap, f"tbl-{dimension}")
            + _warnings(R, "dimensional_agreement", dimension) + I.dimension(R, dimension, n, R.rater_family()))


def _emotion_reference(R: Results, lid: str) -> str | None:
    refs = C.lmm_refs(R.options(lid), R.info(lid))
    return refs.get("emotion")


def bias(R: Results, dimension: str, table_no: int) -> str:
    bid, lid = f"{dimension}_bias", f"{dimension}_emotion_lmm"
    miss = _need(R, bid)
    if miss:
        return miss
    n = _names(R)
    b = R.table(bid)
    bo = R.options(bid)
    fam = bo.get("family")
    adj = C.adjustment(bo.get("adjust", "bonferroni"), bo.get("n_comparisons"), fam, n_tests=len(b))
    cap = (f"Per-emotion {dimension} bias, machine − human mean over each emotion's images (paper Table {table_no}). "
           f"Marks: {C.wilcoxon(bo)} of the per-image differences, {adj} ({SIG_NOTE})." + n.sim_note(_raters_in(b)))
    md = T.md_table(T.bias_table(b, n), cap, f"tbl-{dimension}-bias") + _warnings(R, bid) + I.bias(R, dimension, n)
    lmm = R.table(lid)
    if lmm is None:
        return md + note(R.note(lid))
    opts, info = R.options(lid), R.info(lid)
    refs = C.lmm_refs(opts, info)
    ref = refs.get("emotion")
    emos = list(b["emotion"].dropna().unique())
    formula = info.get("formula") or opts.get("formula")
    con = (" *Simple effect*: the emmeans estimate of machine − human within each emotion (unadjusted p), "
           "i.e. whether the machine is biased at that emotion." if "effect" in lmm.columns and (lmm["effect"] == "contrast").any()
           else " (No emmeans simple effects were computed: set `contrast: rater_type` and `contrast_by: [emotion]`.)")
    cap = (f"LMM tests of the per-emotion {dimension} bias, one model per machine rater: {C.formula(formula)} over the "
           f"human image means and the rater's ratings ({C.df_method(opts, info)}; {C.reference_levels(refs, n)}). "
           f"*Model term*: the test the paper reports as \"LMM p\" (Tables 4 and 6): at the reference emotion ({ref}, ᵃ) the "
           f"rater_type main effect (machine − human at {ref}); at every other emotion the rater_type × emotion interaction, "
           f"i.e. whether the bias there differs from the bias at {ref}." + con + n.sim_note(_raters_in(lmm)))
    md += T.md_table(T.lmm_tests(lmm, ref, emos, n), cap, f"tbl-{dimension}-lmm-tests") + _warnings(R, lid)
    return md + I.lmm_tests(R, dimension, n, ref)


def bland_altman(R: Results) -> str:
    miss = _need(R, "dimensional_agreement")
    if miss:
        return miss
    pts = R.extra("dimensional_agreement", "points")
    if pts is None or pts.empty:
        return note("`dimensional_agreement` wrote no `points` table, so the Bland–Altman plots are skipped.")
    n = _names(R)
    z = float(R.options("dimensional_agreement").get("loa_z", 1.96))
    p, size = F.bland_altman(pts, R.table("dimensional_agreement"), n)
    return F.figure_md(p, "Bland–Altman plots per rater and dimension: machine − human difference against the mean of "
                          f"the two per image, with the bias (solid), the limits of agreement (bias ± {z:g} SD, dashed) and "
                          "the proportional-bias regression of the difference on the mean (dotted; Bland & Altman 1999)."
                          + n.sim_note(_raters_in(pts)), "fig-bland-altman", width=size[0], height=size[1])


def strength_inversion(R: Results) -> str:
    miss = _need(R, "dimensional_agreement")
    if miss:
        return miss
    n = _names(R)
    ag = R.table("dimensional_agreement")
    p, size = F.strength_inversion(ag, R.rater_family(), n)
    return F.figure_md(p, "Strength inversion (paper Figure 3): valence r (x) against arousal r (y) with the human mean "
                          "per rater, 95% CIs both ways; dashed: equal r on both dimensions (raters above it track arousal "
                          "better than valence)." + n.sim_note(_raters_in(ag)), "fig-strength-inversion",
                       width=size[0], height=size[1]) + I.strength_inversion(R, R.rater_family())


def response_variance(R: Results) -> str:
    miss = _need(R, "response_diversity")
    if miss:
        return miss
    df = R.table("response_diversity")
    n = _names(R)
    hsd = R.options("response_diversity").get("human_sd", "trials")
    human = "raw human trials" if hsd == "trials" else "human image means"
    dims = F.dim_order(df["dimension"]) if "dimension" in df.columns else [None]
    md = ""
    for dim in dims:  # one table per dimension keeps the PDF readable
        d = df[df["dimension"] == dim] if dim else df
        name = dim or "rating"
        md += T.md_table(T.response_variance(d, "sd", n),
                         f"Response variance by emotion, {name} (paper Table 7): SD of {name} ratings within each emotion "
                         f"(machine raters: number of distinct values in parentheses; human: SD over {human})."
                         + n.sim_note(_raters_in(d)), f"tbl-response-variance-{slug(name)}")
    if (df["metric"] == "sd_ratio").any():
        md += T.md_table(T.response_variance(df, "sd_ratio", n),
                         f"SD ratio by emotion: machine SD / human SD ({human}) within each emotion; below 1: compressed "
                         "variance (dimensional collapse)." + n.sim_note(_raters_in(df)), "tbl-sd-ratio")
    return md + I.response_variance(R, n, R.rater_family())


# --- demographics ----------------------------------------------------------------------------
def demographic(R: Results) -> str:
    miss = _need(R, "demographic_lmm")
    if miss:
        return miss
    df = R.table("demographic_lmm")
    n = _names(R)
    opts, info = R.options("demographic_lmm"), R.info("demographic_lmm")
    refs = C.lmm_refs(opts, info)
    formula = info.get("formula") or opts.get("formula")
    what = f"{C.formula(formula)}, one model per rater and dimension ({C.df_method(opts, info)}; {C.reference_levels(refs, n)})"
    p, size = F.demographic_forest(df, n, refs)
    md = ""
    if p is not None:
        md += F.figure_md(p, "Demographic bias profile per rater (paper Figure 4): the machine × demographic interaction "
                             f"terms of {what}, with 95% CIs (circles: p < .05). Each term is how much more the machine "
                             "deviates from the human mean for that group than for the reference group."
                          + n.sim_note(_raters_in(df)), "fig-demographic-bias", width=size[0], height=size[1])
    fx = df[(df["effect"] == "fixed") if "effect" in df.columns else slice(None)]
    fx = fx[fx["term"].astype(str).str.startswith("rater_type")]
    md += T.md_table(T.lmm_coefficients(fx, n, refs),
                     f"Demographic LMM: the machine effect and its interactions with the demographic columns; {what}. "
                     f"({SIG_NOTE}, unadjusted.)" + n.sim_note(_raters_in(df)), "tbl-demographic-lmm")
    return md + _warnings(R, "demographic_lmm") + I.demographic(R, n, refs)


def race_emotion_accuracy(R: Results) -> str:
    miss = _need(R, "race_emotion_accuracy")
    if miss:
        return miss
    n = _names(R)
    df = R.table("race_emotion_accuracy")
    return T.md_table(T.group_accuracy(df, n), "Intersectional classification accuracy: proportion correct per design "
                      "cell with Wilson 95% CI (paper §4.5)." + n.sim_note(_raters_in(df), humans=False),
                      "tbl-race-emotion-accuracy")


# --- replication -----------------------------------------------------------------------------
def replication(R: Results) -> str:
    """The scorecard: every published value beside this study's estimate (spec key ``compare_to``)."""
    ct = R.compare_to
    if not ct:
        return note("No published values to compare with: add `compare_to: tae2026` (or a YAML file of published values) "
                    "to the spec to get a replication scorecard here.")
    from emoalign.errors import EmoalignError
    from emoalign.replication import load_published, scorecard, summary

    try:
        pub = load_published(ct.get("published") or "tae2026")
    except EmoalignError as exc:
        return note(f"The published values named by `compare_to` could not be loaded: {exc}")
    n = _names(R)
    card = scorecard(R.table, pub, ct.get("raters") or {})
    summ = summary(card, pub.tables())
    simulated = bool(R.simulation) or any(r.get("simulated") for r in R.raters)
    rule = ("A published value is inside when it lies in this study's 95% CI (widened by half a unit of its last printed "
            "digit) or within the tolerance of its measure of this study's estimate; a p-value is inside when it gives "
            "the same verdict at α = .05 (see docs/replication.md).")
    md = (f"\nPublished values: {pub.citation}\n\n"
          + T.md_table(T.scorecard_summary(summ), f"Replication scorecard summary: published values of {pub.short} per "
                       f"table or section, and how many fall inside their tolerance here. {rule}"
                       + (" Simulated study: the scorecard measures the simulator." if simulated else ""),
                       "tbl-replication-summary", csv=card)
          + I.replication(summ, pub.short, simulated))
    for t in pub.tables():
        c = card[card["table"] == t]
        md += T.md_table(T.scorecard_rows(c, n), f"Scorecard, {pub.short} {t}: each published value beside this study's "
                         "estimate [95% CI] and the verdict." + n.sim_note([r for r in c["rater"].dropna()]),
                         f"tbl-replication-{slug(t) or 'section'}", csv=c)
    return md


# --- model tables ----------------------------------------------------------------------------
def model_details(R: Results) -> str:
    """Every LMM's full fixed-effect table (with its reference levels) and its emmeans contrasts."""
    n = _names(R)
    md = ""
    for aid in R.ids_of_kind("lmm"):
        if R.status(aid) != "ok":
            continue
        df = R.table(aid)
        opts, info = R.options(aid), R.info(aid)
        refs = C.lmm_refs(opts, info)
        what = (f"{C.formula(info.get('formula') or opts.get('formula'))} ({C.df_method(opts, info)}; Wald "
                f"{100 * float(opts.get('conf_level', 0.95)):.0f}% CI; {C.reference_levels(refs, n) or 'R default reference levels'})")
        md += f"\n## {R.title(aid)} {{#sec-model-{slug(aid)}}}\n\n"
        md += T.md_table(T.lmm_coefficients(df, n, refs, "fixed"), f"Fixed effects of `{aid}`: {what}. Terms are shown as "
                         f"'level vs reference'; × marks an interaction ({SIG_NOTE}, unadjusted)." + n.sim_note(_raters_in(df)),
                         f"tbl-model-{slug(aid)}")
        if "effect" in df.columns and (df["effect"] == "contrast").any():
            md += T.md_table(T.lmm_coefficients(df, n, refs, "contrast"), f"emmeans simple effects of `{aid}`: "
                             f"{opts.get('contrast')} contrasts (each level − reference) within "
                             f"{', '.join(opts.get('contrast_by') or []) or 'the whole data'}, df as the model, unadjusted p."
                             + n.sim_note(_raters_in(df)), f"tbl-model-{slug(aid)}-emmeans")
    return md or "\nNo mixed models in these results.\n"


# --- generic ---------------------------------------------------------------------------------
KIND_BLURB = {
    "reliability": "Inter-rater reliability (Krippendorff's α / ICC).",
    "variance_components": "Variance components of a random-effects model.",
    "classification": "Categorical agreement with the intended labels.",
    "mcnemar": "McNemar tests between raters' correctness.",
    "agreement": "Dimensional agreement with the human mean.",
    "group_bias": "Machine − human bias per group, Wilcoxon signed-rank tests.",
    "lmm": "Linear mixed model.",
    "response_diversity": "Response diversity (distinct values, SD, SD ratio to humans).",
    "group_accuracy": "Classification accuracy per group (Wilson CI).",
}


def generic(R: Results, aid: str, level: int = 2) -> str:
    """Any analysis by its kind: heading, a tidy table and a default estimate plot."""
    e = R.entry(aid) or {}
    kind = e.get("kind", "?")
    n = _names(R)
    md = f"\n{'#' * level} {R.title(aid)} {{#sec-{slug(aid)}}}\n\n"
    blurb = KIND_BLURB.get(kind, "")
    if kind == "lmm":
        opts, info = R.options(aid), R.info(aid)
        blurb = (f"Linear mixed model {C.formula(info.get('formula') or opts.get('formula'))} "
                 f"({C.df_method(opts, info)}; {C.reference_levels(C.lmm_refs(opts, info), n) or 'R default reference levels'}).")
    md += f"{blurb} (Analysis `{aid}`, kind `{kind}`.)\n\n"
    if R.status(aid) != "ok":
        return md + note(R.note(aid))
    df = R.table(aid)
    if kind == "lmm" and "effect" in df.columns:
        df = df[df["effect"] != "ran_pars"] if (df["effect"] == "fixed").any() else df
    raters = [*_raters_in(df), *_raters_in(df, "raters")]
    sim = n.sim_note([x.strip() for r in raters for x in r.split(",")])
    shown, left = T.generic(df, names=n)
    more = f" First {len(shown)} of {len(shown) + left} rows; the download holds them all." if left else ""
    md += T.md_table(shown, f"{R.title(aid)}.{more}" + sim, f"tbl-{slug(aid)}", csv=df)
    p, size = F.generic_plot(df, names=n)
    if p is not None:
        md += F.figure_md(p, f"{R.title(aid)}: estimates" + (" with 95% CIs." if "conf_low" in df.columns else ".") + sim,
                          f"fig-{slug(aid)}", width=size[0], height=size[1])
    return md + _warnings(R, aid)


def other_analyses(R: Results) -> str:
    ids = [a["id"] for a in R.analyses if a.get("id") not in FIXED_IDS and a.get("kind") not in REMEDY_KINDS]
    if not ids:
        return "\nThis study ran only the analyses of the sections above.\n"
    return ("\nThe analyses below go beyond the paper's tables. Each is shown with its results table and a plot of "
            "its estimates.\n" + "".join(generic(R, aid) for aid in ids))


# --- provenance ------------------------------------------------------------------------------
def _short_path(path) -> str:
    """A file name without the machine's folders: ``<run>/ratings.parquet`` for machine runs, else the base name."""
    if not path:
        return "–"
    parts = str(path).replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 and parts[-1] == "ratings.parquet" else parts[-1]


def provenance_footer(R: Results) -> str:
    m = R.manifest
    spec = m.get("spec") or {}
    v = m.get("versions") or {}
    rows = [("Spec", f"`{os.path.basename(str(spec.get('path') or '–'))}`"), ("Spec sha256", f"`{str(spec.get('sha256', '–'))[:16]}`"),
            ("emoalign", str(v.get("emoalign", "–"))), ("Python", str(v.get("python", "–"))), ("R", str(v.get("R", "–"))),
            ("Started", str(m.get("started", "–"))), ("Finished", str(m.get("finished", "–"))),
            ("Seconds", T.fnum(m.get("seconds"), 1))]
    if R.simulation:
        s = R.simulation
        rows.append(("Simulation", f"profile `{s.get('profile', '–')}`, seed {s.get('seed', '–')}"))
    for name, sha in (m.get("inputs") or {}).items():
        rows.append((f"Input `{_short_path(name)}`", f"`{str(sha)[:16]}`"))
    md = T.md_table(pd.DataFrame(rows, columns=["Item", "Value"]), "Provenance of these results (file names without "
                    "their folders; sha256 prefixes identify the exact files).", "tbl-provenance")
    an = [{"Analysis": f"`{a.get('id')}`", "Kind": a.get("kind", "–"), "Status": a.get("status", "–"),
           "Rows": T.fnum(a.get("rows")), "Seconds": T.fnum(a.get("seconds"), 2),
           "Warnings": str(len(a.get("warnings") or [])), "Flagged rows": T.fnum(a.get("rows_flagged") or 0)}
          for a in R.analyses]
    if an:
        md += T.md_table(pd.DataFrame(an), "Analyses in the manifest.", "tbl-analyses")
    return md
