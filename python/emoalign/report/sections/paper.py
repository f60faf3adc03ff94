"""The paper's sections: one function per part of ``quarto/report.qmd`` (Tables 1-7, Figures 3-4, the
replication scorecard, model tables, provenance), each reading the analysis that plays its role
(:data:`~emoalign.report.sections.base.PAPER_ROLES`).

Each function takes a loaded ``Results`` and returns markdown (tables with ``{#tbl-...}`` captions, figures
with ``{#fig-...}``). A section whose analysis is missing or failed returns a note instead, so a spec without
some roles still renders. Captions are built from what ran (the options and kind info in the manifest), every
table and figure that shows simulated data says so, and each section ends with a reading computed from its
numbers.
"""

from __future__ import annotations

import os

import pandas as pd

from emoalign.report import captions as C
from emoalign.report import figures as F
from emoalign.report import interpret as I
from emoalign.report import tables as T
from emoalign.report.names import MARK, Names
from emoalign.report.results import Results
from emoalign.report.sections.base import SIG_NOTE, need, note, plays, raters_in as _raters_in, remap_note as _remap_note, slug
from emoalign.report.sections.base import warnings_note as _warnings

__all__ = ["title_banner", "study_design", "rater_provenance", "human_ceiling", "variance_decomposition", "naturalness",
           "classification", "mcnemar", "dimension_summary", "bias", "bland_altman", "strength_inversion",
           "response_variance", "demographic", "race_emotion_accuracy", "replication", "model_details",
           "provenance_footer"]

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
@plays("human_ceiling")
def human_ceiling(R: Results, aid: str) -> str:
    n = _names(R)
    df = R.table(aid)
    cap = ("Human inter-rater reliability, the ceiling machine raters are judged against: "
           + C.reliability(R.options(aid), df) + "." + n.sim_note(["human"]))
    return (T.md_table(T.ceiling(df, n), cap, "tbl-human-ceiling") + trials_per_image(R.study)
            + _warnings(R, aid))


@plays("variance_decomposition")
def variance_decomposition(R: Results, aid: str) -> str:
    df = R.table(aid)
    opts, info = R.options(aid), R.info(aid)
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
    return md + I.human_ceiling(R) + _warnings(R, aid)


def naturalness(R: Results) -> str:
    (aid,), miss = need(R, "naturalness")
    if miss:
        return ""
    n = _names(R)
    t = T.naturalness(R.table(aid))
    return (T.md_table(t, "Naturalness of the stimuli: human ratings per intended emotion, mean and SD of the raw "
                          "ratings (paper §2.4)." + n.sim_note(["human"]), "tbl-naturalness") + I.naturalness(R))


# --- classification --------------------------------------------------------------------------
@plays("classification")
def classification(R: Results, aid: str) -> str:
    df = R.table(aid)
    n = _names(R)
    raters = _raters_in(df)
    opts = R.options(aid)
    ci = f"{100 * float(opts.get('ci_level', 0.95)):.0f}%"
    sim, remap = n.sim_note(raters, humans=False), _remap_note(R, raters)
    ref = R.info(aid).get("reference") or "emotion"
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
    return md + I.classification(R, n, R.rater_family()) + _warnings(R, aid)


@plays("mcnemar")
def mcnemar(R: Results, aid: str) -> str:
    df = R.table(aid)
    n = _names(R)
    opts = R.options(aid)
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
    return md + _warnings(R, aid)


# --- dimensions ------------------------------------------------------------------------------
@plays("dimensional_agreement")
def dimension_summary(R: Results, aid: str, dimension: str, table_no: int) -> str:
    df = R.table(aid)
    if not (df["dimension"] == dimension).any():
        return note(f"`dimensional_agreement` has no {dimension} rows.")
    n = _names(R)
    opts = R.options(aid)
    ci = f"{100 * float(opts.get('ci_level', 0.95)):.0f}%"
    raters = _raters_in(df[df["dimension"] == dimension])
    cap = (f"{dimension.capitalize()} agreement with the human mean per image (paper Table {table_no}): Pearson r "
           f"({ci} CI, Fisher z), ICC(A,1) (two-way random, absolute agreement, single rater; {ci} CI, McGraw & Wong), "
           f"MAE, RMSE, Bland–Altman bias (machine − human) with {ci} limits of agreement "
           f"(bias ± {float(opts.get('loa_z', 1.96)):g} SD), SD ratio (machine SD / human SD; > 1: polarity exaggeration), "
           "and model and human M (SD) over images; ranked by r." + n.sim_note(raters))
    return (T.md_table(T.dimension_summary(df, dimension, R.rater_family(), n), cap, f"tbl-{dimension}")
            + _warnings(R, aid, dimension) + I.dimension(R, dimension, n, R.rater_family()))


def bias(R: Results, dimension: str, table_no: int) -> str:
    (bid,), miss = need(R, f"{dimension}_bias")
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
    (lid,), miss = need(R, f"{dimension}_emotion_lmm")
    if miss:
        return md + miss
    lmm = R.table(lid)
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


@plays("dimensional_agreement")
def bland_altman(R: Results, aid: str) -> str:
    pts = R.extra(aid, "points")
    if pts is None or pts.empty:
        return note("`dimensional_agreement` wrote no `points` table, so the Bland–Altman plots are skipped.")
    n = _names(R)
    z = float(R.options(aid).get("loa_z", 1.96))
    p, size = F.bland_altman(pts, R.table(aid), n)
    return F.figure_md(p, "Bland–Altman plots per rater and dimension: machine − human difference against the mean of "
                          f"the two per image, with the bias (solid), the limits of agreement (bias ± {z:g} SD, dashed) and "
                          "the proportional-bias regression of the difference on the mean (dotted; Bland & Altman 1999)."
                          + n.sim_note(_raters_in(pts)), "fig-bland-altman", width=size[0], height=size[1])


@plays("dimensional_agreement")
def strength_inversion(R: Results, aid: str) -> str:
    n = _names(R)
    ag = R.table(aid)
    p, size = F.strength_inversion(ag, R.rater_family(), n)
    return F.figure_md(p, "Strength inversion (paper Figure 3): valence r (x) against arousal r (y) with the human mean "
                          "per rater, 95% CIs both ways; dashed: equal r on both dimensions (raters above it track arousal "
                          "better than valence)." + n.sim_note(_raters_in(ag)), "fig-strength-inversion",
                       width=size[0], height=size[1]) + I.strength_inversion(R, R.rater_family())


@plays("response_diversity")
def response_variance(R: Results, aid: str) -> str:
    df = R.table(aid)
    n = _names(R)
    hsd = R.options(aid).get("human_sd", "trials")
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
@plays("demographic_lmm")
def demographic(R: Results, aid: str) -> str:
    df = R.table(aid)
    n = _names(R)
    opts, info = R.options(aid), R.info(aid)
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
    return md + _warnings(R, aid) + I.demographic(R, n, refs)


@plays("race_emotion_accuracy")
def race_emotion_accuracy(R: Results, aid: str) -> str:
    n = _names(R)
    df = R.table(aid)
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
    card = scorecard(lambda aid: R.table(R.find(aid) or aid), pub, ct.get("raters") or {})
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
                f"{100 * float(opts.get('ci_level', opts.get('conf_level', 0.95))):.0f}% CI; {C.reference_levels(refs, n) or 'R default reference levels'})")
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
