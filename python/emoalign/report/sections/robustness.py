"""The section of kind ``robustness``: one table per question (labels, ratings, error propagation) and one
figure, flip rate and Cohen's κ against the baseline per condition. Everything shown is read from the
analysis' table as the kind wrote it; nothing is re-estimated here."""

from __future__ import annotations

import pandas as pd
from plotnine import aes, coord_flip, facet_wrap, geom_hline, geom_linerange, geom_point, ggplot, labs

from emoalign.report import figures as F
from emoalign.report import tables as T
from emoalign.report.names import Names
from emoalign.report.results import Results
from emoalign.report.sections.base import section, slug


def _ci(row, digits: int = 3) -> str:
    return T.fci(row.get("estimate"), row.get("conf_low"), row.get("conf_high"), digits)


def _get(df: pd.DataFrame, rater: str, metric: str, **where) -> dict:
    sel = (df["rater"].astype(str) == rater) & (df["metric"] == metric)
    for col, value in where.items():
        sel &= df[col].isna() if value is None else (df[col].astype(str) == value)
    rows = df[sel]
    return rows.iloc[0].to_dict() if len(rows) else {}


def flip_kappa_plot(df: pd.DataFrame, names: Names):
    """Flip rate and κ (with their intervals) per condition rater, one panel each."""
    d = df[df["metric"].isin(["flip_rate", "kappa_vs_baseline"])].copy()
    d["condition"] = [names.rater(r) for r in d["rater"]]
    d["condition"] = pd.Categorical(d["condition"], categories=list(pd.unique(d["condition"]))[::-1])
    d["panel"] = d["metric"].map({"flip_rate": "flip rate vs baseline", "kappa_vs_baseline": "Cohen's κ vs baseline"})
    d["panel"] = pd.Categorical(d["panel"], categories=["flip rate vs baseline", "Cohen's κ vs baseline"])
    p = (ggplot(d, aes("condition", "estimate")) + geom_hline(aes(yintercept="ref"), data=pd.DataFrame(
            {"panel": pd.Categorical(["flip rate vs baseline", "Cohen's κ vs baseline"], categories=list(d["panel"].cat.categories)),
             "ref": [0.0, 1.0]}), linetype="dashed", color="#888888")
         + geom_linerange(aes(ymin="conf_low", ymax="conf_high")) + geom_point(size=2)
         + coord_flip() + facet_wrap("panel", scales="free_x") + labs(x="", y="") + F.BASE)
    return p, (F.TEXT_WIDTH, 1.2 + 0.35 * d["condition"].nunique())


@section("robustness", heading="Prompt robustness", columns=("metric", "rater", "baseline"))
def robustness(R: Results, aid: str, names: Names) -> str:
    df, opts = R.table(aid), R.options(aid)
    base = str(df["baseline"].iat[0])
    model = str(df["model"].iat[0]) if "model" in df else base
    level = f"{round(100 * float(opts.get('ci_level', 0.95)))}%"
    conds = [r for r in pd.unique(df.loc[df["metric"] == "flip_rate", "rater"].astype(str))]
    rows = []
    for r in conds:
        mc = _get(df, r, "mcnemar")
        rows.append({"Condition": names.rater(r), "Flip rate": _ci(_get(df, r, "flip_rate")),
                     "κ vs baseline": _ci(_get(df, r, "kappa_vs_baseline")),
                     "Δ accuracy": _ci(_get(df, r, "accuracy_change")), "Δ macro-F1": _ci(_get(df, r, "macro_f1_change")),
                     "McNemar p": T.fp(mc.get("p_value")), "Images": T.fnum(mc.get("n"))})
    q = df[df["metric"] == "cochran_q"]
    qtext = (f" Cochran's Q over the baseline and every condition: Q = {T.fnum(q['statistic'].iat[0], 2)}, "
             f"df = {T.fnum(q['df'].iat[0], 0)}, p {T.fp(q['p_value'].iat[0])}." if len(q) else "")
    raters = [base, *conds]
    sim = names.sim_note(raters)
    md = T.md_table(pd.DataFrame(rows), f"{R.title(aid)}: step-1 labels of each prompt condition of {model} against "
                    f"the baseline {names.rater(base)}, on the images every condition answered. Flip rate (Wilson "
                    f"{level} CI), Cohen's κ (Wald CI), accuracy and macro-F1 change against the intended labels "
                    f"({level} percentile bootstrap over images), McNemar test of correctness against the baseline."
                    + qtext + sim, f"tbl-{slug(aid)}")
    if rows:
        p, size = flip_kappa_plot(df, names)
        md += F.figure_md(p, f"{R.title(aid)}: flip rate and Cohen's κ of each condition against {names.rater(base)} "
                             f"({level} CIs). A robust model sits at flip rate 0 and κ 1." + sim,
                          f"fig-{slug(aid)}", width=size[0], height=size[1])
    shift = df[(df["metric"] == "shift")]
    if len(shift):
        srows = []
        for (r, dim), g in shift.groupby(["rater", "dimension"], sort=False):
            overall = g[g["emotion"].isna()]
            per = g[g["emotion"].notna()]
            sig = per[per["p_adjusted"] < 0.05]
            srows.append({"Condition": names.rater(r), "Dimension": dim,
                          "Mean shift": _ci(overall.iloc[0].to_dict(), 2) if len(overall) else "",
                          "Emotions shifted (adjusted p < .05)": ", ".join(
                              f"{e} {T.fsigned(v, 2)}" for e, v in zip(sig["emotion"], sig["estimate"])) or "none"})
        md += T.md_table(pd.DataFrame(srows), f"{R.title(aid)}: rating shift, condition minus baseline on the same "
                         f"images (mean, {level} t CI); per intended emotion, Wilcoxon signed-rank tests adjusted "
                         f"({opts.get('adjust', 'bonferroni')}) across the emotions, conditions and dimensions." + sim,
                         f"tbl-{slug(aid)}-shift")
    err = df[df["metric"].isin(["bias_correct_label", "bias_wrong_label", "bias_wrong_minus_correct"])]
    if len(err):
        erows = []
        for (r, dim), g in err.groupby(["rater", "dimension"], sort=False):
            s = {m: x.iloc[0].to_dict() for m, x in g.groupby("metric")}
            diff = s.get("bias_wrong_minus_correct", {})
            erows.append({"Rater": names.rater(r), "Dimension": dim,
                          "Bias, right label": _ci(s.get("bias_correct_label", {}), 2),
                          "Bias, wrong label": _ci(s.get("bias_wrong_label", {}), 2),
                          "Wrong − right": _ci(diff, 2), "p": T.fp(diff.get("p_value"))})
        md += T.md_table(pd.DataFrame(erows), f"{R.title(aid)}: error propagation (paper §3.3). Rating bias against the "
                         f"human image mean on images whose step-1 label is right or wrong ({level} t CIs; Welch test of "
                         "the difference)." + sim, f"tbl-{slug(aid)}-propagation")
    cm = df[df["metric"] == "carry_minus_independent"]
    if len(cm):
        crows = [{"Context carry": names.rater(x.rater), "Independent": names.rater(x.rater2), "Dimension": x.dimension,
                  "Step-1 label": x.step1, "Δ |error|": T.fci(x.estimate, x.conf_low, x.conf_high, 2),
                  "Wilcoxon p": T.fp(x.p_value), "Images": T.fnum(x.n)} for x in cm.itertuples()]
        md += T.md_table(pd.DataFrame(crows), f"{R.title(aid)}: context carry minus independent prompting, mean paired "
                         f"difference of |rating − human image mean| ({level} t CI), on the images whose context-carry "
                         "step-1 label is wrong and on those where it is right: what carrying a wrong label costs." + sim,
                         f"tbl-{slug(aid)}-carry")
    return md
